"""The completion watch's pacing: the polling budget, the intervals between looks, a look soon after a click.

The budget and the detection bound are stated in the package docstring (bot/services/registration/__init__.py)
and measured by bench/registration_watch.py.
"""

from __future__ import annotations

import random
from datetime import timedelta

from bot.services.runtime import Runtime
from bot.store import wizard_repo
from bot.store.models.wizard import Wizard

WATCH_DEADLINE = "registration.watch"

POLL_BUDGET_PER_MINUTE = 1200  # Graph list calls for all watches together (~6% of a small tenant's quota)
FIRST_POLL_AFTER = 20.0  # seconds after the reveal: nobody registers a key faster
MIN_INTERVAL, MAX_INTERVAL, IDLE_SHARE, JITTER = 15.0, 60.0, 0.5, 0.15
ACTIVE_DELAY = 5.0  # after a click: look this soon (if the budget allows)


def watch_key(request_id: str) -> str:
    return f"wizard-watch:{request_id}"


def detection_bound(live: int, pump_seconds: float) -> float:
    """The longest a registration can go unnoticed with `live` watches (seconds)."""
    floor = live * 60.0 / POLL_BUDGET_PER_MINUTE
    return max(MAX_INTERVAL, floor) * (1 + JITTER) + pump_seconds


def next_interval(idle_seconds: float, floor: float) -> float:
    """Seconds to the next look: backs off while the person is idle, never below the budget's floor."""
    backoff = min(MAX_INTERVAL, max(MIN_INTERVAL, idle_seconds * IDLE_SHARE))
    return max(backoff, floor) * random.uniform(1.0, 1.0 + JITTER)


async def spacing(rt: Runtime) -> float:
    """The least time between two looks for one person, so that all of them fit the budget."""
    async with rt.db.read() as session:
        live = await wizard_repo.count_live(session)
    return max(ACTIVE_DELAY, live * 60.0 / POLL_BUDGET_PER_MINUTE)


async def poll_soon(rt: Runtime, row: Wizard) -> None:
    """A click: look at Entra shortly; only ever brings the next look forward, never closer than a floor."""
    due = rt.clock.now() + timedelta(seconds=await spacing(rt))
    key = watch_key(row.request_id)
    async with rt.db.session() as session:
        scheduled = await wizard_repo.watch_due(session, key)
        if scheduled is not None and scheduled <= due:
            return
        await rt.deadlines.schedule(
            WATCH_DEADLINE, due, {"request_id": row.request_id}, key=key, replace=True, session=session
        )
