"""Property tests: whatever order, duplication or concurrency of clicks and deadline deliveries, a pass
exists only after one approval by an eligible third person, and one approval never yields two live passes.

Each example files a fresh request for a fresh employee (through the real services, the real database
and the Slack and Graph simulators over HTTP), then plays a generated sequence of steps; a step is one
operation or several run at once with asyncio.gather (real concurrency on PostgreSQL). The invariants
are checked against Graph's record of TAP creations, the Entra simulator's live passes, the request
row, the issuance rows and the audit log.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import Keydesk, build_app
from bot.clock import FrozenClock
from bot.domain.tap_request import RequestState
from bot.sandbox.company import DOMAIN, Company, seed_company
from bot.sandbox.stack import Stack, open_stack
from bot.services import approvals, delivery, manager, onboarding
from bot.slack import tap_views
from bot.store.db import Database
from bot.store.models.tap_requests import TapIssuance, TapRequest

TAP_COLLECTION = r"/authentication/temporaryAccessPassMethods$"
ELIGIBLE = ("sam", "alex")  # the approvers group in the seeded company


@dataclass
class World:
    stack: Stack
    company: Company
    keydesk: Keydesk
    clock: FrozenClock
    numbers: itertools.count[int]


@pytest.fixture
async def world(database_url: str, database: Database) -> AsyncIterator[World]:
    # Generous limits: the examples share approvers and an hour, and the limits are tested elsewhere.
    stack = await open_stack(
        database_url, max_approvals_per_approver_per_hour=100_000, max_passes_per_hour=100_000
    )
    clock = FrozenClock()
    try:
        company = seed_company(stack.slack, stack.graph)
        keydesk = build_app(stack.settings, clock=clock, db=database)
        await keydesk.verify_slack()  # no deadline pump: the examples deliver deadlines themselves
        try:
            yield World(stack, company, keydesk, clock, itertools.count(1))
        finally:
            await keydesk.rt.directory.close()
    finally:
        await stack.slack.stop()
        await stack.graph.stop()


# --- the operations ------------------------------------------------------------------------------
PEOPLE = ("target", "sam", "alex", "grace", "morgan")
METHODS = ("in_person", "manager_confirmed", "video_call_photo_id")

APPROVERS = ("sam", "alex", "sam", "alex", "target", "grace", "morgan")
approve = st.tuples(st.just("approve"), st.sampled_from(APPROVERS), st.sampled_from(METHODS))
reveal = st.tuples(st.just("reveal"), st.sampled_from(("target", "target", "target", "sam", "grace")))
# Approve and Reveal are drawn more often than the rest so that most examples get as far as a pass.
op = st.one_of(
    approve,
    approve,
    reveal,
    reveal,
    reveal,
    st.tuples(st.just("deny"), st.sampled_from(PEOPLE)),
    st.tuples(st.just("confirm"), st.sampled_from(("grace", "morgan"))),
    st.tuples(
        st.sampled_from(("expire_decision", "expire_approval", "orphan", "expire_pass", "target_confirms"))
    ),
    st.tuples(st.just("advance"), st.sampled_from((1, 30, 90, 300))),
)
step = st.one_of(
    op.map(lambda o: [o]),
    st.lists(op, min_size=2, max_size=3),  # concurrent: duplicated or crossing deliveries
    st.sampled_from(("reveal", "approve")).flatmap(  # the same click delivered two or three times
        lambda kind: st.integers(2, 3).map(
            lambda n: (
                [("reveal", "target")] * n if kind == "reveal" else [("approve", "sam", "in_person")] * n
            )
        )
    ),
)
noise = st.lists(step, max_size=3)
approvals_at_once = st.lists(approve, min_size=1, max_size=3)
reveals_at_once = st.lists(reveal, min_size=1, max_size=3)
# The approve-then-reveal path, with noise before, between and after, so most examples reach a pass.
steps = st.tuples(noise, approvals_at_once, noise, reveals_at_once, noise).map(
    lambda parts: [*parts[0], parts[1], *parts[2], parts[3], *parts[4]]
)
# (opened by the helpdesk?, has the manager confirmed first?, the steps)
scenario = st.tuples(st.booleans(), st.booleans(), steps)


@dataclass
class Case:
    target_slack: str
    target_entra: str
    request_id: str
    requester: str


async def _new_case(w: World, opened_by_helpdesk: bool) -> Case:
    n = next(w.numbers)
    slack_id, email = f"U0PROP{n:04d}", f"prop{n}@{DOMAIN}"
    user = w.stack.graph.tenant.add_user(
        f"Prop Person {n}", email, department="Engineering", manager_id=w.company.grace.entra_id
    )
    w.stack.slack.add_user(slack_id, f"prop{n}", real_name=f"Prop Person {n}", email=email)
    rt = w.keydesk.rt
    if opened_by_helpdesk:
        await onboarding.open_for_user(rt, w.company.sam.slack_id, slack_id)
        requester = w.company.sam.slack_id
    else:
        await onboarding.request_pass(rt, slack_id)
        requester = slack_id
    async with rt.db.read() as session:
        row = (
            await session.execute(select(TapRequest).where(TapRequest.target_slack_id == slack_id))
        ).scalar_one()
    return Case(slack_id, user.id, row.id, requester)


def _slack_id(w: World, case: Case, who: str) -> str:
    return case.target_slack if who == "target" else getattr(w.company, who).slack_id


async def _run(w: World, case: Case, operation: tuple[Any, ...]) -> None:
    rt, rid = w.keydesk.rt, case.request_id
    kind = operation[0]
    if kind == "approve":
        opened_at = rt.clock.now()
        await approvals.approve(rt, rid, _slack_id(w, case, operation[1]), operation[2], "", opened_at)
    elif kind == "deny":
        await approvals.deny(rt, rid, _slack_id(w, case, operation[1]), "property test")
    elif kind == "confirm":
        await manager.answer(rt, rid, _slack_id(w, case, operation[1]), expected=True)
    elif kind == "target_confirms":
        await onboarding.target_answers(rt, rid, case.target_slack, confirmed=True)
    elif kind == "reveal":
        clicker = _slack_id(w, case, operation[1])
        view_id = await rt.slack.open_view(w.stack.slack.issue_trigger(clicker), tap_views.working_modal())
        await delivery.reveal(rt, rid, clicker, view_id)
    elif kind == "expire_decision":
        await approvals.expire_decision(rt, rid)
    elif kind == "expire_approval":
        await approvals.expire_approval(rt, rid)
    elif kind == "orphan":
        await delivery.check_orphan(rt, rid)
    elif kind == "expire_pass":
        await delivery.expire_pass(rt, rid)
    elif kind == "advance":
        w.clock.advance(timedelta(minutes=operation[1]))


def _creations(w: World, case: Case) -> int:
    return len(
        [
            r
            for r in w.stack.graph.requests_to("POST", TAP_COLLECTION)
            if f"/users/{case.target_entra}/" in r.path and 200 <= r.status < 300
        ]
    )


# --- the invariants ------------------------------------------------------------------------------
async def _check(w: World, case: Case) -> None:
    rt = w.keydesk.rt
    eligible = {getattr(w.company, name).slack_id for name in ELIGIBLE}
    created = [
        r
        for r in w.stack.graph.requests_to("POST", TAP_COLLECTION)
        if f"/users/{case.target_entra}/" in r.path and 200 <= r.status < 300
    ]
    entries = [
        e
        for e in await rt.audit.entries(action_prefix="tap.")
        if e.details.get("request_id") == case.request_id
    ]

    def rows(action: str) -> list[Any]:
        return [e for e in entries if e.action == action]

    approved, denied = rows("tap.request.approved"), rows("tap.request.denied")
    started, issued = rows("tap.issue.started"), rows("tap.issued")
    async with rt.db.read() as session:
        request = await session.get(TapRequest, case.request_id, populate_existing=True)
        issuances = list(
            (
                await session.execute(select(TapIssuance).where(TapIssuance.request_id == case.request_id))
            ).scalars()
        )
    assert request is not None
    state = RequestState(request.state)

    # One decision per request, whatever raced.
    assert len(approved) + len(denied) <= 1, [e.action for e in entries]
    # A pass only after an approval by an eligible third person.
    if created or issuances or issued:
        assert len(approved) == 1, f"TAP created without an approval: {[e.action for e in entries]}"
        approver = approved[0].actor.removeprefix("slack:")
        assert approver in eligible
        assert approver not in (case.requester, case.target_slack)
        assert request.decided_by_slack_id == approver
        assert all(i.approver_slack_id == approver for i in issuances)
    # Only the target's own reveal starts a creation, and each start asks Graph at most once.
    assert all(e.actor == f"slack:{case.target_slack}" for e in started)
    assert len(created) <= len(started)
    assert len(issuances) == len(issued) <= len(created)
    # Never two live passes for one approval; a live pass is the one the request shows, nothing else.
    live = [t for t in w.stack.graph.tenant.taps_of(case.target_entra) if not t.deleted]
    if state is RequestState.ISSUED:
        assert [t.id for t in live] == [request.tap_id]
    else:
        assert state is not RequestState.ISSUING, "a creation was left half-done"
        assert live == [], f"a pass is alive in Entra while the request is {state.value}"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenario)
async def test_any_order_of_clicks_and_deadlines_keeps_the_invariants(
    world: World, scenario: tuple[bool, bool, list[list[tuple[Any, ...]]]]
) -> None:
    opened_by_helpdesk, confirmed, steps = scenario
    case = await _new_case(world, opened_by_helpdesk)
    await _run(world, case, ("target_confirms",))
    if confirmed:
        await _run(world, case, ("confirm", "grace"))
    for group in steps:
        await asyncio.gather(*(_run(world, case, operation) for operation in group))
        await _check(world, case)
    async with world.keydesk.rt.db.read() as session:
        final = await session.get(TapRequest, case.request_id)
    event(f"ends {final.state if final else 'missing'}")
    event(f"passes created: {min(_creations(world, case), 2)}+")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reveals=st.integers(2, 5), approvers=st.lists(st.sampled_from(ELIGIBLE), min_size=2, max_size=4))
async def test_racing_approvals_then_racing_reveals_create_one_pass(
    world: World, reveals: int, approvers: list[str]
) -> None:
    """Several approvers at once, then the same Reveal click delivered several times at once.

    Each delivery opens a modal, which replaces the person's earlier one in Slack: a creation whose modal
    vanished is deleted and another delivery may create again, so more than one POST can happen, but
    never two live passes, and at most one pass is alive: the one that was shown.
    """
    case = await _new_case(world, opened_by_helpdesk=False)
    await _run(world, case, ("confirm", "grace"))
    await asyncio.gather(*(_run(world, case, ("approve", who, "in_person")) for who in approvers))
    await asyncio.gather(*(_run(world, case, ("reveal", "target")) for _ in range(reveals)))
    await _check(world, case)
    async with world.keydesk.rt.db.read() as session:
        request = await session.get(TapRequest, case.request_id)
    assert request is not None
    # Issued with the one pass shown, or back to approved (every modal was replaced) with none alive.
    assert request.state in (RequestState.ISSUED, RequestState.APPROVED)
