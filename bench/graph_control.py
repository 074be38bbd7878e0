"""The Graph simulator as the reveal bench sees it: in this process, or in a child process of its own.

In production Graph is a remote service: its work never shares keydesk's CPU or event loop. The
bench therefore runs the Graph simulator in a child process (`RemoteGraph`) and drives it through a
small control channel on the child's stdin/stdout, one JSON line each way (as `bench/ack.py` does
with its parties). keydesk only ever talks to the child over HTTP, as it would to Graph. The
end-to-end smoke test keeps the in-process simulator (`LocalGraph`); both offer the same calls.

The control channel is the bench's, not the simulator's: nothing is added to the simulator's HTTP
surface, and nothing at all to keydesk.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.sandbox.graph_sim import GraphSimulator  # noqa: E402
from bot.sandbox.graph_sim.throttle import Throttle  # noqa: E402


class _TimedThrottle(Throttle):
    """The simulator's token bucket, unchanged, noting when each request asked and what it was told
    (monotonic clock, the same for every process on the machine)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log: list[tuple[float, float | None]] = []

    def take(self) -> float | None:
        wait = super().take()
        self.log.append((time.monotonic(), wait))
        return wait

    def report(self) -> dict[str, Any]:
        """Admission times, and how late each retry came after the Retry-After it was given (a
        refusal is followed by the retry of the caller holding keydesk's single turn)."""
        admitted = [t for t, wait in self.log if wait is None]
        late = [nxt - (t + wait) for (t, wait), (nxt, _) in pairwise(self.log) if wait is not None]
        return {
            "admitted": self.admitted,
            "refused": self.refused,
            "admitted_at": admitted,
            "retry_late_median_s": statistics.median(late) if late else 0.0,
        }


def _summary(requests: list[Any]) -> list[dict[str, Any]]:
    return [{"method": r.method, "path": r.path, "route": r.route, "status": r.status} for r in requests]


class _Ops:
    """The control operations, applied to a simulator in this process (shared by both sides)."""

    def __init__(self, graph: GraphSimulator) -> None:
        self.graph = graph

    def run(self, op: str, args: dict[str, Any]) -> Any:
        graph = self.graph
        if op == "add_users":
            return [
                graph.tenant.add_user(
                    u["name"], u["email"], department=u["department"], manager_id=u["manager"]
                ).id
                for u in args["users"]
            ]
        if op == "latency":
            graph.set_latency(float(args["seconds"]))
            return None
        if op == "throttle":
            graph.throttle = _TimedThrottle(
                rate=float(args["rate"]), method=args["method"], path=args["path"], burst=int(args["burst"])
            )
            return None
        if op == "unthrottle":
            throttle, graph.throttle = graph.throttle, None
            return throttle.report() if isinstance(throttle, _TimedThrottle) else None
        if op == "count":
            return len(graph.requests)
        if op == "requests":
            return _summary(graph.requests[int(args["since"]) :])
        if op == "live_taps":
            return {i: sum(1 for t in graph.tenant.taps_of(i) if not t.deleted) for i in args["ids"]}
        raise ValueError(f"unknown control operation {op!r}")


class LocalGraph:
    """The simulator in this process (the end-to-end tests' stack)."""

    def __init__(self, graph: GraphSimulator) -> None:
        self._ops = _Ops(graph)

    async def call(self, op: str, **args: Any) -> Any:
        return self._ops.run(op, args)

    async def close(self) -> None:
        return None


class RemoteGraph:
    """The simulator in a child process; keydesk reaches it at `url` over HTTP like the real Graph."""

    def __init__(self, proc: asyncio.subprocess.Process, hello: dict[str, Any]) -> None:
        self._proc = proc
        self._lock = asyncio.Lock()
        self.url: str = hello["url"]
        self.seeded: dict[str, str] = hello["seeded"]  # the demo company's entra ids, by handle

    @classmethod
    async def spawn(cls, token: str) -> RemoteGraph:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            token,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            },
            limit=64 * 1024 * 1024,
        )
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"graph simulator child exited ({await proc.wait()})")
        return cls(proc, json.loads(line))

    async def call(self, op: str, **args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        async with self._lock:
            self._proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
            await self._proc.stdin.drain()
            line = await self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"graph simulator child exited ({await self._proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"graph simulator child: {answer['error']}")
        return answer["result"]

    async def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), timeout=20)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()


# --- the child ----------------------------------------------------------------------------------


async def _serve(token: str) -> None:
    from bot.logs import configure_logging
    from bot.sandbox.company import seed_company
    from bot.sandbox.slack_sim import SlackSimulator
    from bot.sandbox.stack import SIGNING_SECRET

    configure_logging("ERROR", "console")
    graph = GraphSimulator(token=token)
    url = await graph.start()
    # The Graph half of the demo company; the Slack half is seeded by the parent, which owns Slack.
    company = seed_company(SlackSimulator(signing_secret=SIGNING_SECRET), graph)
    seeded = {
        name: getattr(company, name).entra_id for name in ("ada", "grace", "sam", "alex", "morgan", "lin")
    }
    ops = _Ops(graph)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    say({"url": url, "seeded": seeded})
    while line := await reader.readline():
        request = json.loads(line)
        try:
            say({"result": ops.run(request.pop("op"), request)})
        except Exception as exc:  # report to the parent, keep serving
            say({"error": repr(exc)})
    await graph.stop()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
