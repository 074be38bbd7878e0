"""Many people revealing at once against a throttling Graph, and one person waiting on a slow Entra.

The crowd runs `bench/reveal.py`'s own crowd part at a small scale and checks correctness only (one
live pass per person, none lost, the follow-up work done for everyone), never how long it took.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.sandbox.company import Company
from bot.sandbox.graph_sim import Fault
from bot.sandbox.stack import Stack
from bot.services import delivery

from .helpers import TAP_COLLECTION, approved_dm, audit, reveal, settle, tap_posts, text_of, wait_audit

BENCH = Path(__file__).resolve().parents[2] / "bench" / "reveal.py"
CROWD = 12


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("keydesk_bench_reveal", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.keydesk_settings(max_approvals_per_approver_per_hour=1000, max_passes_per_hour=1000)
async def test_a_throttled_crowd_gets_exactly_one_pass_each(stack: Stack, company: Company) -> None:
    bench = load_bench()

    result = await bench.crowd(stack, company, CROWD, rate=40.0, burst=1)

    assert result["people_with_one_live_pass"] == CROWD
    assert result["requests_issued"] == CROWD
    assert result["tap_posts_admitted"] == CROWD  # no second pass minted for anyone
    assert result["follow_ups_done"] == CROWD
    assert result["throttled_429"] > 0  # the throttle really was in the way
    await settle(stack)


async def test_a_slow_entra_shows_still_working_then_the_one_pass(
    stack: Stack, company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    monkeypatch.setattr(delivery, "STILL_WORKING_AFTER", 0.05)
    dm = await approved_dm(stack, company)
    # Graph throttles the creation once and asks for a pause the gateway waits out by itself.
    graph.add_fault(Fault(method="POST", path=TAP_COLLECTION, status=429, retry_after=0.5, times=1))

    view = await reveal(slack, ada.slack_id, dm, timeout=5.0)

    updates = [
        text_of(c.params["view"]) for c in slack.calls_to("views.update") if c.params["view_id"] == view.id
    ]
    working = [i for i, text in enumerate(updates) if "still working" in text]
    shown = [i for i, text in enumerate(updates) if "Here is your *Temporary Access Pass*" in text]
    assert working and shown and working[-1] < shown[0], updates
    assert shown[0] == len(updates) - 1  # nothing overwrote the pass afterwards
    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert not tap.deleted
    assert [r.status for r in tap_posts(graph, ada.entra_id)] == [429, 201]
    await wait_audit(stack, "tap.notified")
    await settle(stack)
    assert len(await audit(stack, "tap.issued")) == 1
