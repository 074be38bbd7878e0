"""The gateway under faults: Retry-After honoured within a budget, no unsafe retries of TAP creation,
timeouts, dropped connections, metrics, and secrets that never reach a log line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
import structlog
from aiohttp import web

from bot.config import Settings
from bot.directory import Throttled, Unauthenticated, Unavailable, build_directory
from bot.directory.graph import GraphDirectory
from bot.directory.resilience import RetryPolicy
from bot.logs import configure_logging
from bot.sandbox.graph_sim import Fault, GraphSimulator, SimUser

TOKEN = "sim-graph-token"
USER_PATH = r"^/users/[^/]+$"
TAP_PATH = r"/authentication/temporaryAccessPassMethods$"
FAST = RetryPolicy(budget_seconds=1.5, base_backoff=0.05)  # waits without Retry-After stay short


@pytest.fixture
async def sim() -> AsyncIterator[GraphSimulator]:
    simulator = GraphSimulator(token=TOKEN)
    await simulator.start()
    yield simulator
    await simulator.stop()


def settings_for(sim: GraphSimulator, *, timeout: float = 5, token: str = TOKEN) -> Settings:
    return Settings(_env_file=None, graph_url=sim.base_url, graph_token=token, graph_timeout_seconds=timeout)


@pytest.fixture
async def directory(sim: GraphSimulator) -> AsyncIterator[GraphDirectory]:
    gateway = build_directory(settings_for(sim), retry_policy=FAST)
    yield gateway
    await gateway.close()


@pytest.fixture
def ada(sim: GraphSimulator) -> SimUser:
    return sim.tenant.add_user("Ada Lovelace", "ada@contoso.com")


# --- throttling ----------------------------------------------------------------------------------------


async def test_429_with_retry_after_is_waited_for_once(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="GET", path=USER_PATH, status=429, retry_after=1))

    started = time.monotonic()
    user = await directory.get_user(ada.id)
    elapsed = time.monotonic() - started

    assert user.id == ada.id
    assert 0.95 <= elapsed < 1.8  # slept the Retry-After, did not hammer Graph meanwhile
    assert [r.status for r in sim.requests_to("GET", USER_PATH)] == [429, 200]
    stats = directory.metrics["get_user"]
    assert (stats.calls, stats.attempts, stats.throttled, stats.failures) == (1, 2, 1, 0)
    assert stats.total_seconds >= 0.95


async def test_429_beyond_the_budget_raises_throttled_at_once(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="GET", path=USER_PATH, status=429, retry_after=60))

    started = time.monotonic()
    with pytest.raises(Throttled) as caught:
        await directory.get_user(ada.id)

    assert caught.value.retry_after == 60 and caught.value.status == 429
    assert time.monotonic() - started < 0.5
    assert len(sim.requests) == 1
    assert directory.metrics["get_user"].failures == 1


async def test_endless_429_stops_within_the_budget(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="GET", path=USER_PATH, status=429, retry_after=0.3, times=0))

    started = time.monotonic()
    with pytest.raises(Throttled) as caught:
        await directory.get_user(ada.id)

    assert time.monotonic() - started <= FAST.budget_seconds + 0.3  # the budget, plus one request
    assert 2 <= len(sim.requests) <= RetryPolicy().max_attempts
    assert caught.value.retry_after == pytest.approx(0.3)


# --- server errors, timeouts, dropped connections ------------------------------------------------------


async def test_503_on_a_read_is_retried(directory: GraphDirectory, sim: GraphSimulator, ada: SimUser) -> None:
    sim.add_fault(Fault(method="GET", path=USER_PATH, status=503, retry_after=0.1))
    assert (await directory.get_user(ada.id)).id == ada.id
    assert [r.status for r in sim.requests] == [503, 200]


async def test_503_that_persists_raises_unavailable(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="GET", path=USER_PATH, status=503, times=0))
    with pytest.raises(Unavailable) as caught:
        await directory.get_user(ada.id)
    assert caught.value.status == 503 and caught.value.code == "serviceNotAvailable"


async def test_a_dropped_read_is_retried(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="GET", path=USER_PATH, drop_before_commit=True))
    assert (await directory.get_user(ada.id)).id == ada.id
    assert [r.dropped for r in sim.requests] == [True, False]


async def test_latency_over_the_timeout_raises_unavailable(sim: GraphSimulator, ada: SimUser) -> None:
    gateway = build_directory(settings_for(sim, timeout=0.5))
    sim.add_fault(Fault(method="GET", path=USER_PATH, status=0, latency=2.0))
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            await gateway.get_user(ada.id)
        assert time.monotonic() - started < 1.2
        assert caught.value.code == "timeout" and "0.5 s" in str(caught.value)
        assert len(sim.requests_to("GET", USER_PATH)) <= 1
    finally:
        await gateway.close()


async def test_create_tap_is_retried_after_429(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="POST", path=TAP_PATH, status=429, retry_after=0.2))

    issued = await directory.create_tap(ada.id, lifetime_minutes=60, usable_once=True)

    assert [r.status for r in sim.requests_to("POST", TAP_PATH)] == [429, 201]
    (tap,) = sim.tenant.taps_of(ada.id)
    assert issued.id == tap.id


@pytest.mark.parametrize("status", [500, 503, 504])
async def test_create_tap_is_never_retried_after_a_server_error(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, status: int
) -> None:
    sim.add_fault(Fault(method="POST", path=TAP_PATH, status=status, retry_after=0.1))
    with pytest.raises(Unavailable):
        await directory.create_tap(ada.id, lifetime_minutes=60, usable_once=True)
    assert len(sim.requests_to("POST", TAP_PATH)) == 1


async def test_create_tap_dropped_after_commit_raises_unavailable_after_one_post(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="POST", path=TAP_PATH, drop_after_commit=True))

    with pytest.raises(Unavailable) as caught:
        await directory.create_tap(ada.id, lifetime_minutes=60, usable_once=True)

    assert caught.value.code == "transport"
    assert len(sim.requests_to("POST", TAP_PATH)) == 1
    (committed,) = sim.tenant.taps_of(ada.id)  # the pass exists: the caller reconciles by listing
    (listed,) = await directory.list_taps(ada.id)
    assert listed.id == committed.id


async def test_create_tap_timeout_is_not_retried(sim: GraphSimulator, ada: SimUser) -> None:
    gateway = build_directory(settings_for(sim, timeout=0.5))
    sim.add_fault(Fault(method="POST", path=TAP_PATH, status=0, latency=1.0))
    try:
        with pytest.raises(Unavailable):
            await gateway.create_tap(ada.id, lifetime_minutes=60, usable_once=True)
        assert len(sim.requests_to("POST", TAP_PATH)) <= 1
        assert gateway.metrics["create_tap"].attempts == 1
    finally:
        await gateway.close()


async def test_a_wrong_token_is_unauthenticated(sim: GraphSimulator, ada: SimUser) -> None:
    gateway = build_directory(settings_for(sim, token="not-the-token"))
    try:
        with pytest.raises(Unauthenticated) as caught:
            await gateway.get_user(ada.id)
        assert caught.value.status == 401
        assert "not-the-token" not in str(caught.value)
    finally:
        await gateway.close()


async def test_metrics_count_calls_failures_and_time(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    await directory.get_user(ada.id)
    await directory.list_methods(ada.id)
    sim.add_fault(Fault(method="GET", path="/authentication/methods$", status=403))
    with pytest.raises(Exception, match="Authorization_RequestDenied"):
        await directory.list_methods(ada.id)

    snapshot = directory.metrics.snapshot()
    assert (snapshot["get_user"].calls, snapshot["get_user"].failures) == (1, 0)
    assert (snapshot["list_methods"].calls, snapshot["list_methods"].failures) == (2, 1)
    assert snapshot["list_methods"].mean_seconds > 0


async def test_a_retry_sends_the_same_url_with_its_query(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="GET", path=USER_PATH, status=429, retry_after=0.05))

    assert (await directory.get_user("ada@contoso.com")).id == ada.id

    first, second = sim.requests_to("GET", USER_PATH)
    assert (first.status, second.status) == (429, 200)
    assert first.target == second.target  # the request builder's parameters survive the first attempt
    assert "/users/ada%40contoso.com?$select=id," in second.target


# --- answers Graph should never send -------------------------------------------------------------------


@dataclass
class Scripted:
    """A loopback HTTP server that answers with scripted (status, body) pairs and records headers."""

    answers: list[tuple[int, bytes]] = field(default_factory=list)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.host.split(":")[0], {k.lower(): v for k, v in request.headers.items()}))
        status, body = self.answers.pop(0)
        return web.Response(status=status, body=body, content_type="application/json")


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    server = Scripted()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


@pytest.fixture
async def scripted_directory(scripted: Scripted) -> AsyncIterator[GraphDirectory]:
    settings = Settings(
        _env_file=None,
        graph_url=f"http://127.0.0.1:{scripted.port}",
        graph_token=TOKEN,
        graph_timeout_seconds=5,
    )
    gateway = build_directory(settings, retry_policy=FAST)
    yield gateway
    await gateway.close()


def methods_page(*ids: str, next_link: str | None = None) -> bytes:
    page: dict[str, object] = {
        "value": [{"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": i} for i in ids]
    }
    if next_link:
        page["@odata.nextLink"] = next_link
    return json.dumps(page).encode()


@pytest.mark.parametrize(
    "body", [b"<html>gateway error</html>", b"[1, 2]", b'{"value": {"id": "m-1"}}', b'{"value": ["m-1"]}']
)
async def test_an_answer_that_is_not_a_collection_is_unavailable_not_empty(
    scripted_directory: GraphDirectory, scripted: Scripted, body: bytes
) -> None:
    scripted.answers.append((200, body))
    with pytest.raises(Unavailable) as caught:
        await scripted_directory.list_methods("ada@contoso.com", hardware_oath=False)
    assert caught.value.code == "unreadable"  # a role or method list that reads as [] would fail open


async def test_a_garbled_pass_never_shows_in_the_error(
    scripted_directory: GraphDirectory, scripted: Scripted
) -> None:
    scripted.answers.append((201, b'{"id": "tap-1", "temporaryAccessPass": "Xy7#kP2q", "lifetimeIn'))
    with pytest.raises(Unavailable) as caught:
        await scripted_directory.create_tap("ada@contoso.com", lifetime_minutes=60, usable_once=True)
    assert caught.value.code == "unreadable"
    assert "Xy7" not in str(caught.value) and "Xy7" not in repr(caught.value)
    assert len(scripted.seen) == 1  # an unreadable creation answer is not retried


async def test_next_links_are_followed_and_a_foreign_host_gets_no_token(
    scripted_directory: GraphDirectory, scripted: Scripted
) -> None:
    same = f"http://127.0.0.1:{scripted.port}/v1.0/users/u/authentication/methods?$skiptoken=2"
    foreign = f"http://localhost:{scripted.port}/v1.0/users/u/authentication/methods?$skiptoken=3"
    scripted.answers += [
        (200, methods_page("m-1", next_link=same)),
        (200, methods_page("m-2", next_link=foreign)),
        (200, methods_page("m-3")),
    ]

    # v1.0 only (no beta token list): one scripted answer per request
    methods = await scripted_directory.list_methods("u", hardware_oath=False)

    assert [m.id for m in methods] == ["m-1", "m-2", "m-3"]
    assert [host for host, _ in scripted.seen] == ["127.0.0.1", "127.0.0.1", "localhost"]
    tokens = [headers.get("authorization") for _, headers in scripted.seen]
    assert tokens == [f"Bearer {TOKEN}", f"Bearer {TOKEN}", None]


# --- secrets -------------------------------------------------------------------------------------------


@pytest.fixture
def all_logs_at_debug() -> Iterator[io.StringIO]:
    """Production logging (structlog through stdlib) plus a buffer that receives every record."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    saved_levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    saved_root = (root.level, list(root.handlers))
    saved_structlog = structlog.get_config()
    configure_logging("DEBUG", fmt="console")
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.setLevel(saved_root[0])
        root.handlers = saved_root[1]
        structlog.configure(**saved_structlog)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def debug_everything() -> None:
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.disabled = False


async def test_tap_value_and_token_never_reach_any_log(
    sim: GraphSimulator, ada: SimUser, all_logs_at_debug: io.StringIO
) -> None:
    gateway = build_directory(settings_for(sim))
    debug_everything()  # after construction: even with the gateway's own floors undone
    sim.add_fault(Fault(method="POST", path=TAP_PATH, status=429, retry_after=0.1))
    try:
        issued = await gateway.create_tap(ada.id, lifetime_minutes=60, usable_once=True)
        await gateway.list_taps(ada.id)
    finally:
        await gateway.close()

    output = all_logs_at_debug.getvalue()
    value = issued.value.reveal()
    assert "temporaryAccessPassMethods" in output and "graph_retry" in output  # the capture works
    assert value not in output
    assert TOKEN not in output
    assert value not in repr(issued) and value not in str(issued)


async def test_the_http2_stack_loggers_are_floored_at_warning(sim: GraphSimulator) -> None:
    logging.getLogger("hpack").setLevel(logging.NOTSET)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        gateway = build_directory(settings_for(sim))
        await gateway.close()
        assert logging.getLogger("hpack").getEffectiveLevel() >= logging.WARNING
        assert logging.getLogger("h2").getEffectiveLevel() >= logging.WARNING
    finally:
        logging.getLogger().setLevel(logging.WARNING)


def test_importing_the_package_does_not_import_the_sdk() -> None:
    code = (
        "import sys, bot.directory; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'msgraph', 'msgraph_beta', 'kiota_http', 'azure'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


_NO_MODELS_SCRIPT = """
import asyncio, sys
from bot.config import Settings
from bot.directory import build_directory
from bot.sandbox.graph_sim import GraphSimulator, seed_sample

async def main():
    async with GraphSimulator(token="t") as sim:
        ids = seed_sample(sim.tenant)
        d = build_directory(Settings(_env_file=None, graph_url=sim.base_url, graph_token="t"))
        await d.find_users_by_email("ada@contoso.com")
        await d.get_manager(ids.ada)
        await d.list_methods(ids.ada)
        await d.directory_roles(ids.admin)
        await d.member_of_groups(ids.ada, [ids.platform])
        await d.tap_policy()
        await d.fido2_policy()
        await d.create_tap(ids.bob, lifetime_minutes=60, usable_once=True)
        await d.list_taps(ids.bob)
        await d.close()
    prefixes = ("msgraph.generated.models.", "msgraph_beta.generated.models.")
    print(sorted(m for m in sys.modules if m.startswith(prefixes)))

asyncio.run(main())
"""


def test_answers_are_read_without_building_sdk_models() -> None:
    """The kiota models cost tens of ms of CPU per answer on the event loop; only the error envelope
    (ODataError, used for non-2xx answers) may be loaded."""
    result = subprocess.run(
        [sys.executable, "-c", _NO_MODELS_SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = result.stdout.strip()
    assert (
        loaded
        == "['msgraph.generated.models.o_data_errors', 'msgraph.generated.models.o_data_errors.o_data_error']"
    )
