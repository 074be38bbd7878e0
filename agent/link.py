"""The agent's side of the link: pairing, the outbound long-poll, checking jobs, signed results.

The agent keeps its own Ed25519 key and the server's public key (pinned at pairing) in a config
directory readable only by its owner. It only ever calls out (it sits behind NAT): it asks for work,
the server holds the request open until there is a job or the long-poll time passes.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import protocol

KEY_FILE = "agent.key"
LINK_FILE = "link.json"
RESULT_LIFETIME = timedelta(minutes=2)
POLL_LIFETIME = timedelta(minutes=1)
HTTP_TIMEOUT = 70.0  # longer than the server's longest long-poll
BACKOFF_START, BACKOFF_CAP = 1.0, 60.0


class LinkError(Exception):
    """The server refused or could not be reached; the message is for the technician."""


class LinkStopped(LinkError):
    """The server refused this agent for good (revoked, unknown, forged): stop polling."""


class LinkPending(LinkError):
    """Paired, but a second approver has not confirmed this desk yet: keep asking, slowly."""


class InsecureServer(LinkStopped):
    """The server URL is plain http to another machine: jobs and keys would cross the network in clear."""


class LinkThrottled(LinkError):
    """The server said 429: wait `retry_after` seconds before asking again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LinkClockSkew(LinkError):
    """The server refused a message as from the future or expired: usually this machine's clock."""


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SKEW_HINT_SECONDS = 5.0  # an offset this large is worth telling the technician about


def check_server_url(server: str) -> str:
    """The server URL without a trailing slash; https, or plain http only to this very machine."""
    server = server.strip().rstrip("/")
    parts = urlsplit(server)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise InsecureServer(f"{server!r} is not a server URL: give one like https://keydesk.example.com.")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise InsecureServer(
            f"Refusing {server}: plain http would carry this desk's jobs and pairing code in clear. "
            "Use the server's https:// URL (http is allowed only for 127.0.0.1, ::1 or localhost)."
        )
    return server


def skew_hint(offset: float | None) -> str:
    """What to tell the technician when the server found a message too early or too late."""
    if offset is None or abs(offset) < SKEW_HINT_SECONDS:
        return "The server refused a message as expired (it may have been delayed on the way)."
    way = "ahead of" if offset > 0 else "behind"
    return (
        f"This machine's clock is {abs(offset):.0f} s off ({way} the server); sync it "
        "(Windows: `w32tm /resync` as administrator; Linux: `timedatectl set-ntp true`; "
        "macOS: Date & Time, Set automatically)."
    )


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return BACKOFF_CAP


def _server_time(response: httpx.Response) -> str | None:
    try:
        value = response.json().get("server_time")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


SKEW_REASONS = frozenset({"expired", "clock_skew"})


class JobRefused(Exception):
    """A job failed the agent's own checks and was not run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def default_home() -> Path:
    env = os.environ.get("KEYDESK_AGENT_HOME")
    if env:
        return Path(env)
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "keydesk-agent"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "keydesk-agent"


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (0600), replacing any earlier one atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(temp, 0o600)  # O_CREAT's mode is masked by the umask; be explicit
    os.replace(temp, path)


@dataclass(frozen=True)
class Pairing:
    server: str
    agent_id: str
    name: str
    state: str
    server_public_key: str

    @property
    def server_fingerprint(self) -> str:
        return protocol.fingerprint(self.server_public_key)


@dataclass
class AgentHome:
    """The config directory: the agent's private key and what it learned at pairing."""

    path: Path

    def pairing(self) -> Pairing | None:
        try:
            data = json.loads((self.path / LINK_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return Pairing(**data)

    def key(self) -> Ed25519PrivateKey:
        return protocol.load_private_key_pem((self.path / KEY_FILE).read_bytes())

    def save(self, key: Ed25519PrivateKey, pairing: Pairing) -> None:
        _write_private(self.path / KEY_FILE, protocol.private_key_pem(key))
        _write_private(self.path / LINK_FILE, json.dumps(pairing.__dict__, indent=2).encode())


def _now() -> datetime:
    return datetime.now(UTC)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text[:200])
    except ValueError:
        return f"HTTP {response.status_code}"


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or "")
    except ValueError:
        return ""


def pair(
    server: str,
    code: str,
    name: str,
    home: AgentHome,
    *,
    http: httpx.Client | None = None,
    now: datetime | None = None,
) -> Pairing:
    """Create this agent's key pair, register it with the server, and pin the server's key."""
    server = check_server_url(server)
    key = protocol.new_private_key()
    sent_at = now or _now()
    proof = protocol.envelope(
        protocol.Direction.PAIR,
        agent_id="",
        now=sent_at,
        lifetime=timedelta(minutes=1),
        body={"name": name, "code_hash": protocol.pairing_code_hash(code)},
    )
    body = {
        "code": code,
        "name": name,
        "public_key": protocol.public_key_text(key),
        "proof": protocol.sign(proof, key).to_json(),
    }
    client = http or httpx.Client(timeout=30)
    try:
        response = client.post(f"{server}/agent/v1/pair", json=body)
    except httpx.HTTPError as exc:
        raise LinkError(f"Could not reach {server}: {exc}") from exc
    if response.status_code == 429:
        wait = _retry_after(response)
        raise LinkThrottled(f"{_message(response)} Try again in {wait:.0f} s.", wait)
    if response.status_code != 201 and _error(response) in SKEW_REASONS:
        raise LinkClockSkew(
            skew_hint(protocol.clock_offset(sent_at, _server_time(response))) + " Then pair again."
        )
    if response.status_code != 201:
        raise LinkError(_message(response))
    data = response.json()
    protocol.load_public_key(data["server_public_key"])  # refuse garbage before pinning it
    pairing = Pairing(
        server=server,
        agent_id=str(data["agent_id"]),
        name=str(data["name"]),
        state=str(data["state"]),
        server_public_key=str(data["server_public_key"]),
    )
    home.save(key, pairing)
    return pairing


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    target: str
    params: dict[str, Any]


JobHandler = Callable[[Job], dict[str, Any]]


class JobFailed(Exception):
    """A handler's failure, as a sentence the technician and the server may read (never a secret)."""


@dataclass
class AgentLink:
    """One paired agent talking to its server."""

    home: AgentHome
    handlers: dict[str, JobHandler]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=HTTP_TIMEOUT))
    clock: Callable[[], datetime] = _now
    say: Callable[[str], None] = print
    _seen: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pairing = self.home.pairing()
        if pairing is None:
            raise LinkStopped("This desk agent is not paired yet: run keydesk-agent pair first.")
        check_server_url(pairing.server)  # a link.json pointing at plain http elsewhere is refused too
        self.pairing = pairing
        self.key = self.home.key()
        self.server_key = protocol.load_public_key(pairing.server_public_key)

    # --- checking a job -------------------------------------------------------------------
    def check_job(self, data: Any) -> Job:
        """Signature by the pinned server key, for this agent, not expired, never seen before."""
        now = self.clock()
        try:
            env = protocol.verify(
                protocol.parse(data),
                self.server_key,
                now=now,
                direction=protocol.Direction.JOB,
                agent_id=self.pairing.agent_id,
            )
        except protocol.ProtocolError as exc:
            raise JobRefused(exc.reason) from None
        self._seen = {n: t for n, t in self._seen.items() if t > now}
        if env.nonce in self._seen:
            raise JobRefused("replayed")
        self._seen[env.nonce] = protocol.accepted_until(env)
        if not env.job_id:
            raise JobRefused("malformed")
        return Job(env.job_id, env.kind, env.target, dict(env.body))

    # --- talking to the server ------------------------------------------------------------
    def auth_header(self) -> dict[str, str]:
        env = protocol.envelope(
            protocol.Direction.POLL, agent_id=self.pairing.agent_id, now=self.clock(), lifetime=POLL_LIFETIME
        )
        return {protocol.AUTH_HEADER: protocol.sign(env, self.key).to_header()}

    def poll_once(self) -> bool:
        """Ask for one job and serve it; False when the server had nothing. Raises LinkStopped/LinkError."""
        sent_at = self.clock()
        try:
            response = self.http.get(f"{self.pairing.server}/agent/v1/jobs", headers=self.auth_header())
        except httpx.HTTPError as exc:
            raise LinkError(f"Could not reach the server: {exc}") from exc
        if response.status_code == 204:
            return False
        self._raise_for_refusal(response, sent_at)
        if response.status_code != 200:
            raise LinkError(f"The server answered {response.status_code}: {_message(response)}")
        try:
            data = response.json()
            job = self.check_job(data)
        except JobRefused as exc:
            self.say(f"✗ Refused a job that failed its checks ({exc}). Nothing was done.")
            if exc.reason in SKEW_REASONS:
                raise LinkClockSkew(skew_hint(self._offset_from_job(data))) from None
            return True
        except ValueError as exc:
            self.say(f"✗ Refused a job that failed its checks ({exc}). Nothing was done.")
            return True
        self.serve(job)
        return True

    def _raise_for_refusal(self, response: httpx.Response, sent_at: datetime) -> None:
        """Turn the server's refusals into the errors the loop acts on; return when not refused."""
        status, error = response.status_code, _error(response)
        if status == 429:
            wait = _retry_after(response)
            raise LinkThrottled(f"The server asks this desk to slow down ({_message(response)})", wait)
        if status == 401 and error in SKEW_REASONS:
            raise LinkClockSkew(skew_hint(protocol.clock_offset(sent_at, _server_time(response))))
        if status == 403 and error == "not_confirmed":
            raise LinkPending(_message(response))
        if status in (401, 403):
            raise LinkStopped(_message(response))

    def _offset_from_job(self, data: Any) -> float | None:
        """A job is stamped with the server's time when delivered: the offset of this machine's clock."""
        try:
            issued = protocol.parse(data).envelope.issued
        except protocol.ProtocolError:
            return None
        return (self.clock() - issued).total_seconds()

    def serve(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        self.say(f"→ Job {job.kind} ({job.id[:8]})")
        notice = job.params.get("notice")
        if isinstance(notice, str) and notice.strip():  # what the server wants the technician to know
            self.say("  " + notice.strip()[:300].replace("[", "("))
        if handler is None:
            self.send_result(job, ok=False, error=f"This desk agent can't do {job.kind!r} jobs.")
            return
        try:
            result = handler(job)
        except JobFailed as exc:
            self.say(f"✗ {exc}")
            self.send_result(job, ok=False, error=str(exc))
            return
        self.say("✓ Done; result sent.")
        self.send_result(job, ok=True, result=result)

    def result_envelope(
        self, job: Job, *, ok: bool, result: dict[str, Any] | None = None, error: str | None = None
    ) -> protocol.Signed:
        body: dict[str, Any] = {"ok": ok, "result": result or {}}
        if error:
            body["error"] = error
        env = protocol.envelope(
            protocol.Direction.RESULT,
            agent_id=self.pairing.agent_id,
            now=self.clock(),
            lifetime=RESULT_LIFETIME,
            job_id=job.id,
            kind=job.kind,
            target=job.target,
            body=body,
        )
        return protocol.sign(env, self.key)

    def post_result(self, job_id: str, signed: protocol.Signed | dict[str, Any]) -> httpx.Response:
        payload = signed.to_json() if isinstance(signed, protocol.Signed) else signed
        return self.http.post(f"{self.pairing.server}/agent/v1/jobs/{job_id}/result", json=payload)

    def send_result(
        self, job: Job, *, ok: bool, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        sent_at = self.clock()
        try:
            response = self.post_result(job.id, self.result_envelope(job, ok=ok, result=result, error=error))
        except httpx.HTTPError as exc:
            raise LinkError(f"Could not send the result: {exc}") from exc
        self._raise_for_refusal(response, sent_at)
        if response.status_code != 200:
            self.say(f"✗ The server did not take the result: {_message(response)}")

    # --- the loop -------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        """Poll until stopped or refused for good, backing off (with jitter) while the server is away."""
        stop = stop or threading.Event()
        delay = BACKOFF_START
        while not stop.is_set():
            try:
                self.poll_once()
                delay = BACKOFF_START
            except LinkStopped:
                raise
            except LinkPending as exc:
                self.say(f"… {exc} Asking again in {BACKOFF_CAP / 4:.0f} s.")
                sleep(BACKOFF_CAP / 4)
            except LinkThrottled as exc:  # honour Retry-After, never sooner
                self.say(f"… {exc}; waiting {exc.retry_after:.0f} s as asked")
                sleep(exc.retry_after * random.uniform(1.0, 1.2))
            except LinkClockSkew as exc:  # not fatal: once the clock is synced, the next try works
                self.say(f"✗ {exc} Trying again in {delay:.0f} s.")
                sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_CAP)
            except LinkError as exc:
                self.say(f"… {exc}; trying again in {delay:.0f} s")
                sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_CAP)
