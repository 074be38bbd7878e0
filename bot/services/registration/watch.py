"""The completion watch: look in Entra for the new method within the polling budget, honouring throttling."""

from __future__ import annotations

import random
from collections import deque
from datetime import datetime, timedelta

from bot.deadlines import Deadline, RetryLater
from bot.directory import AuthMethod, DirectoryError, Throttled
from bot.domain.guides import GuideMethod
from bot.domain.tap_request import RequestState
from bot.logs import get_logger
from bot.services.registration.completion import complete
from bot.services.registration.detect import new_method, pending_method
from bot.services.registration.ending import expire, follow_request
from bot.services.registration.guides import library
from bot.services.registration.nudge import NUDGE_DEADLINE, send_nudge
from bot.services.registration.pacing import (
    ACTIVE_DELAY,
    POLL_BUDGET_PER_MINUTE,
    WATCH_DEADLINE,
    next_interval,
)
from bot.services.registration.rows import pair
from bot.services.runtime import Runtime
from bot.store import wizard_repo
from bot.store.models.wizard import Wizard

log = get_logger(__name__)

UNAVAILABLE_RETRY = 30.0
LIVE_COUNT_TTL = timedelta(seconds=5)
GRACE = timedelta(minutes=5)  # keep looking this long after the pass expired (Entra can lag)


class Watcher:
    """The completion watch and the nudge. Holds this replica's view of throttling and of the load."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.quiet_until: datetime | None = None
        self._live: tuple[int, datetime] | None = None
        self._recent: deque[datetime] = deque()  # this replica's looks in the last minute

    def _wait_for_room(self, now: datetime) -> float:
        """Seconds until this replica may look again without passing the budget (0: now)."""
        cutoff = now - timedelta(minutes=1)
        while self._recent and self._recent[0] <= cutoff:
            self._recent.popleft()
        if len(self._recent) < POLL_BUDGET_PER_MINUTE:
            return 0.0
        return (self._recent[0] - cutoff).total_seconds()

    async def floor(self) -> float:
        now = self.rt.clock.now()
        if self._live is None or now - self._live[1] > LIVE_COUNT_TTL:
            async with self.rt.db.read() as session:
                self._live = (await wizard_repo.count_live(session), now)
        return self._live[0] * 60.0 / POLL_BUDGET_PER_MINUTE

    async def poll(self, deadline: Deadline) -> None:
        rt = self.rt
        row, request = await pair(rt, request_id=str(deadline.payload["request_id"]))
        if row is None or request is None or not row.live:
            return
        if await follow_request(rt, row, request):
            return
        now = rt.clock.now()
        method = library(rt).get(row.guide_id).method
        # Hardware tokens are listed by a second (beta) call: made only when a token is what we watch for,
        # and counted against the budget: two calls a look, so such a watch looks at most half as often.
        tokens = method is GuideMethod.HARDWARE_OATH
        floor = await self.floor() * (2 if tokens else 1)
        self._hold_off(now, floor)
        self._recent.extend([now] * (2 if tokens else 1))
        methods = await self._list(row, floor, hardware_oath=tokens)
        found = pending_method(row) or new_method(methods, row, method)
        if found is not None:
            await self._complete(row, found)
            return
        give_up = (row.pass_expires_at or request.tap_expires_at or now) + GRACE
        if now >= give_up and request.state != RequestState.ISSUED:
            await expire(rt, row)
            return
        self._again(row, now, floor, give_up)

    def _hold_off(self, now: datetime, floor: float) -> None:
        """Wait (RetryLater) while Graph throttles this replica or its minute's budget is spent."""
        if self.quiet_until is not None and now < self.quiet_until:
            wait = (self.quiet_until - now).total_seconds() + random.uniform(0, max(floor, 1.0))
            raise RetryLater(wait, "graph throttled (held off)")
        room = self._wait_for_room(now)
        if room:
            raise RetryLater(room + random.uniform(0, max(floor, 1.0)), "polling budget reached")

    async def _complete(self, row: Wizard, found: AuthMethod) -> None:
        try:
            won = await complete(self.rt, row.id, found)
        except Throttled as exc:
            raise RetryLater(exc.retry_after, "graph throttled while deleting the pass") from None
        except DirectoryError as exc:
            raise RetryLater(UNAVAILABLE_RETRY, f"pass not deleted: {type(exc).__name__}") from None
        if not won:
            raise RetryLater(ACTIVE_DELAY, "not finished yet")  # e.g. a new pass was being issued

    async def _list(self, row: Wizard, floor: float, *, hardware_oath: bool) -> list[AuthMethod]:
        try:
            return await self.rt.directory.list_methods(row.user_entra_id, hardware_oath=hardware_oath)
        except Throttled as exc:
            until = self.rt.clock.now() + timedelta(seconds=exc.retry_after)
            self.quiet_until = max(self.quiet_until or until, until)
            log.info("registration.watch_throttled", retry_after=exc.retry_after)
            raise RetryLater(exc.retry_after, "graph throttled") from None
        except DirectoryError as exc:
            raise RetryLater(UNAVAILABLE_RETRY + random.uniform(0, floor), type(exc).__name__) from None

    @staticmethod
    def _again(row: Wizard, now: datetime, floor: float, give_up: datetime) -> None:
        due = now + timedelta(seconds=next_interval((now - row.step_started_at).total_seconds(), floor))
        if now < give_up < due:
            due = give_up  # one last look right at the end
        raise RetryLater(max((due - now).total_seconds(), ACTIVE_DELAY), "nothing registered yet")

    async def nudge(self, deadline: Deadline) -> None:
        """Once, shortly before the pass runs out, if Entra shows nothing yet."""
        await send_nudge(self.rt, deadline)


def register_registration_deadlines(rt: Runtime) -> Watcher:
    watcher = Watcher(rt)
    rt.deadlines.register(WATCH_DEADLINE, watcher.poll)
    rt.deadlines.register(NUDGE_DEADLINE, watcher.nudge)
    return watcher
