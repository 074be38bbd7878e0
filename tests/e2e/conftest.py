"""The whole keydesk on 127.0.0.1: the real app over HTTP with the Slack and Graph simulators behind it.

`stack` starts a fresh one per test on the `database_url` database (SQLite, or PostgreSQL when
KEYDESK_TEST_DATABASE_URL is set). Settings can be changed per test with
`@pytest.mark.keydesk_settings(max_approvals_per_approver_per_hour=1, ...)`. The app runs on
`app_clock`, the wall clock plus an offset a test may move forward to make deadlines fall due. A test
that takes `alert_collector` gets a security webhook collector wired in (KEYDESK_SECURITY_WEBHOOK_URL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.config import Settings
from bot.directory import build_directory
from bot.sandbox.alert_collector import AlertCollector
from bot.sandbox.company import Company, seed_company
from bot.sandbox.graph_sim import GraphSimulator
from bot.sandbox.stack import Stack, open_stack

from .helpers import ShiftableClock, quiesce


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "keydesk_settings(**overrides): settings for the e2e stack")


async def _touch_every_graph_call() -> None:
    """msgraph imports each request builder on first use (seconds in all): pay that once, up front."""
    graph = GraphSimulator(token="warm-up")
    url = await graph.start()
    try:
        user = graph.tenant.add_user("Warm Up", "warm.up@northwind.example")
        directory = build_directory(Settings(_env_file=None, graph_url=url, graph_token="warm-up"))  # type: ignore[call-arg]
        try:
            await directory.find_users_by_email(user.upn)
            await directory.get_user(user.id)
            await directory.get_manager(user.id)
            await directory.tap_policy()
            await directory.directory_roles(user.id)
            await directory.member_of_groups(user.id, ["00000000-0000-0000-0000-000000000001"])
            await directory.list_methods(user.id)
            tap = await directory.create_tap(user.id, lifetime_minutes=60, usable_once=True)
            await directory.list_taps(user.id)
            await directory.delete_tap(user.id, tap.id)
            await directory.revoke_sessions(user.id)
        finally:
            await directory.close()
    finally:
        await graph.stop()


@pytest.fixture(scope="session", autouse=True)
def _warm_graph_sdk() -> Iterator[None]:
    asyncio.run(_touch_every_graph_call())
    yield


async def shut_down(stack: Stack) -> None:
    """Let listener work under way finish, stop the pump cleanly, then stop the app and simulators."""
    await _finish(_listener_tasks(), timeout=3)
    await quiesce(stack)
    await stack.close()
    me = asyncio.current_task()
    await _finish([t for t in asyncio.all_tasks() if t is not me], timeout=1)


def _listener_tasks() -> list[asyncio.Task[object]]:
    """Bolt runs each listener in a task of its own after the ack; a test may end before it does."""
    return [t for t in asyncio.all_tasks() if "ListenerRunner" in getattr(t.get_coro(), "__qualname__", "")]


async def _finish(tasks: list[asyncio.Task[object]], timeout: float) -> None:
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


@pytest.fixture
def app_clock() -> ShiftableClock:
    return ShiftableClock()


@pytest.fixture
async def stack(
    request: pytest.FixtureRequest, database_url: str, app_clock: ShiftableClock
) -> AsyncIterator[Stack]:
    marker = request.node.get_closest_marker("keydesk_settings")
    overrides = dict(marker.kwargs) if marker else {}
    collector: AlertCollector | None = None
    if "alert_collector" in request.fixturenames:  # the security team's collector receives every alert
        collector = AlertCollector()
        overrides.setdefault("security_webhook_url", await collector.start())
        overrides.setdefault("security_webhook_authorization", COLLECTOR_AUTHORIZATION)
    opened = await open_stack(database_url, **overrides)
    try:
        opened.company = seed_company(opened.slack, opened.graph)  # type: ignore[attr-defined]
        opened.alert_collector = collector  # type: ignore[attr-defined]
        await opened.start_app(clock=app_clock)
        yield opened
    finally:
        await shut_down(opened)
        if collector is not None:
            await collector.close()


COLLECTOR_AUTHORIZATION = "Bearer collector-test-token"


@pytest.fixture
def alert_collector(stack: Stack) -> AlertCollector:
    """The collector the stack sends security alerts to (asking for it is what wires it in)."""
    collector: AlertCollector = stack.alert_collector  # type: ignore[attr-defined]
    return collector


@pytest.fixture
def company(stack: Stack) -> Company:
    found: Company = stack.company  # type: ignore[attr-defined]
    return found
