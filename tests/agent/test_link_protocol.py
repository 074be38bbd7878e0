"""The wire protocol and the agent's own checks of a job: signature, binding, expiry, replay."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent import protocol
from agent.link import AgentHome, AgentLink, JobRefused, LinkStopped, Pairing

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def job(
    server: protocol.Ed25519PrivateKey, agent_id: str = "agent-1", **overrides: object
) -> protocol.Signed:
    env = protocol.envelope(
        protocol.Direction.JOB, agent_id=agent_id, now=NOW, job_id="job-1", kind="inspect", body={"a": 1}
    )
    return protocol.sign(replace(env, **overrides), server)  # type: ignore[arg-type]


@pytest.fixture
def server() -> protocol.Ed25519PrivateKey:
    return protocol.new_private_key()


@pytest.fixture
def link(tmp_path: Path, server: protocol.Ed25519PrivateKey) -> AgentLink:
    home = AgentHome(tmp_path)
    pairing = Pairing("http://127.0.0.1:9", "agent-1", "desk-1", "active", protocol.public_key_text(server))
    home.save(protocol.new_private_key(), pairing)
    return AgentLink(home, {}, clock=lambda: NOW + timedelta(seconds=5), say=lambda _t: None)


def test_a_good_job_passes_once_then_is_a_replay(link: AgentLink, server: protocol.Ed25519PrivateKey) -> None:
    data = job(server).to_json()
    checked = link.check_job(data)
    assert (checked.id, checked.kind, checked.params) == ("job-1", "inspect", {"a": 1})
    with pytest.raises(JobRefused, match="replayed"):
        link.check_job(data)


def test_tampered_wrong_agent_and_foreign_signer_are_refused(
    link: AgentLink, server: protocol.Ed25519PrivateKey
) -> None:
    signed = job(server)
    tampered = protocol.Signed(replace(signed.envelope, target="someone-else"), signed.signature).to_json()
    with pytest.raises(JobRefused, match="tampered"):
        link.check_job(tampered)
    with pytest.raises(JobRefused, match="wrong_agent"):
        link.check_job(job(server, agent_id="agent-2").to_json())
    with pytest.raises(JobRefused, match="tampered"):
        link.check_job(job(protocol.new_private_key()).to_json())
    with pytest.raises(JobRefused, match="malformed"):
        link.check_job({"envelope": {"v": 1}, "signature": "x"})


def test_expired_and_overlong_jobs_are_refused(link: AgentLink, server: protocol.Ed25519PrivateKey) -> None:
    link.clock = lambda: NOW + timedelta(minutes=5, seconds=1)  # within the 2-minute clock-skew grace
    link.check_job(job(server).to_json())
    link.clock = lambda: NOW + timedelta(minutes=7, seconds=1)
    with pytest.raises(JobRefused, match="expired"):
        link.check_job(job(server, nonce="another").to_json())
    link.clock = lambda: NOW
    overlong = job(server, expires_at=protocol.iso(NOW + timedelta(minutes=10)))
    with pytest.raises(JobRefused, match="expired"):
        link.check_job(overlong.to_json())
    with pytest.raises(ValueError):
        protocol.envelope(protocol.Direction.JOB, agent_id="a", now=NOW, lifetime=timedelta(minutes=6))


def test_a_job_cannot_pass_as_a_result(server: protocol.Ed25519PrivateKey) -> None:
    with pytest.raises(protocol.Tampered):
        protocol.verify(job(server), server.public_key(), now=NOW, direction=protocol.Direction.RESULT)


def test_header_round_trip_and_files_are_owner_only(link: AgentLink, tmp_path: Path) -> None:
    header = link.auth_header()[protocol.AUTH_HEADER]
    env = protocol.verify(
        protocol.parse_header(header),
        link.key.public_key(),
        now=NOW + timedelta(seconds=5),
        direction=protocol.Direction.POLL,
        agent_id="agent-1",
    )
    assert env.kind == "" and len(env.nonce) == 32
    assert all((tmp_path / n).stat().st_mode & 0o777 == 0o600 for n in ("agent.key", "link.json"))


def test_protocol_imports_neither_fido2_nor_bot() -> None:
    tree = ast.parse(Path(protocol.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not [n for n in names if n.split(".")[0] in ("fido2", "bot")]


def test_run_backs_off_while_the_server_is_away_and_stops_when_refused(link: AgentLink) -> None:
    answers = iter(
        [
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(403, json={"error": "not_confirmed", "message": "not confirmed yet."}),
            httpx.Response(204),
            httpx.Response(403, json={"error": "revoked", "message": "This desk agent was revoked."}),
        ]
    )
    seen_headers: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen_headers.append(request.headers[protocol.AUTH_HEADER])
        return next(answers)

    link.http = httpx.Client(transport=httpx.MockTransport(answer))
    slept: list[float] = []
    with pytest.raises(LinkStopped, match="revoked"):
        link.run(sleep=slept.append)
    assert len(slept) == 3 and 0.8 <= slept[0] <= 1.2 and 1.6 <= slept[1] <= 2.4 and slept[2] == 15
    assert len(set(seen_headers)) == 5  # a fresh nonce on every request: none can be replayed
