"""The guided registration in the DM: the wizard's use cases, the completion watch and the nudge.

After the pass is revealed, `start_after_reveal` reads the tenant's FIDO2 policy (pre-flight), posts
ONE wizard message in the person's DM and arms two durable deadlines: the completion watch and the
nudge. Every click moves the wizard with compare-and-set on its version; the message is re-rendered
from the database, so any replica can serve any click, before or after a restart.

Completion watch (deadline `registration.watch`, one per request): it lists the person's methods in
Graph and looks for one of the guide's kind, not there at the reveal and created after it. When found:
the pass is deleted at once, the request closes (ISSUED -> COMPLETED), the wizard says which key Entra
shows and how to test it, the helpdesk card and App Home follow, and the audit log records it.
It stops at the pass's expiry plus `GRACE`. Hardware OATH tokens are listed by Graph only in beta: the
watch asks for them (one more call per look, counted against the budget) only while the person follows
the token guide, and a token counts once it is activated. A pass for today (key left at home) starts no
wizard, watch or nudge: there is nothing to register.

Polling budget and detection bound (measured by bench/registration_watch.py):
- each person is polled every `max(interval, floor)` seconds (plus jitter). The interval backs off with
  the time since the person's last click: `IDLE_SHARE` of it, from `MIN_INTERVAL` up to `MAX_INTERVAL`
  (no extra state: a click restarts the step clock). `floor = live wizards * 60 / POLL_BUDGET_PER_MINUTE`,
  so all watches together stay within `POLL_BUDGET_PER_MINUTE` list calls per minute (tenant-wide and
  across replicas: the count is global);
- a click (Done, Back, a method) brings the next poll forward to `max(ACTIVE_DELAY, floor)` seconds from
  now, never later than it already was: still at least a floor after the person's previous poll;
- so a registration is noticed within `detection_bound(live, pump)` seconds: the longest interval
  (with jitter) plus one deadline pump period;
- each replica also keeps its own sliding minute under the budget, so a burst (many reveals at once)
  is deferred rather than sent;
- Graph's 429 is honoured: the throttled watch waits `Retry-After`, and every other watch on this
  replica holds off until then too (spread over one floor), so throttling never becomes a busy loop.

Where it lives (one job per module):
- rows: read a wizard with its request; save a transition on the newest stored state
- guides: the guide library per settings; the title of the step a wizard is on
- preflight: the FIDO2 policy for this person and the methods already there, before the start
- start: start the wizard after the reveal, arming its first look and its nudge
- screen: render the wizard from the database into its one DM message
- clicks: the person's clicks (compare-and-set moves, Done / Back / a method) and Resume
- pacing: the polling budget, the intervals between looks, looking soon after a click
- detect: which method in Entra counts as the new registration (pure)
- watch: the completion watch (a durable deadline), within the budget and honouring 429s
- completion: delete the pass, close the request and tell everyone
- ending: follow the request when it ends elsewhere; expire after the grace period
- nudge: the one reminder shortly before the pass runs out
- home: App Home's part for the person
"""

from __future__ import annotations

from bot.services.registration.clicks import Step, move, press, resume
from bot.services.registration.completion import complete, remember_pending
from bot.services.registration.detect import CREATED_SKEW, KIND_OF, new_method, pending_method
from bot.services.registration.ending import on_request_changed
from bot.services.registration.guides import library
from bot.services.registration.home import home_blocks
from bot.services.registration.nudge import NUDGE_BEFORE, NUDGE_DEADLINE
from bot.services.registration.pacing import (
    ACTIVE_DELAY,
    FIRST_POLL_AFTER,
    IDLE_SHARE,
    JITTER,
    MAX_INTERVAL,
    MIN_INTERVAL,
    POLL_BUDGET_PER_MINUTE,
    WATCH_DEADLINE,
    detection_bound,
    next_interval,
)
from bot.services.registration.rows import load
from bot.services.registration.screen import ENDED_BY_REQUEST, show
from bot.services.registration.start import start_after_reveal
from bot.services.registration.watch import (
    GRACE,
    LIVE_COUNT_TTL,
    UNAVAILABLE_RETRY,
    Watcher,
    register_registration_deadlines,
)

__all__ = [
    "ACTIVE_DELAY",
    "CREATED_SKEW",
    "ENDED_BY_REQUEST",
    "FIRST_POLL_AFTER",
    "GRACE",
    "IDLE_SHARE",
    "JITTER",
    "KIND_OF",
    "LIVE_COUNT_TTL",
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "NUDGE_BEFORE",
    "NUDGE_DEADLINE",
    "POLL_BUDGET_PER_MINUTE",
    "UNAVAILABLE_RETRY",
    "WATCH_DEADLINE",
    "Step",
    "Watcher",
    "complete",
    "detection_bound",
    "home_blocks",
    "library",
    "load",
    "move",
    "new_method",
    "next_interval",
    "on_request_changed",
    "pending_method",
    "press",
    "register_registration_deadlines",
    "remember_pending",
    "resume",
    "show",
    "start_after_reveal",
]
