"""A small demo company, seeded consistently into the Slack and Graph simulators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.sandbox.graph_sim import GraphSimulator
from bot.sandbox.slack_sim import SlackSimulator
from bot.sandbox.stack import APPROVERS_GROUP, HELPDESK_CHANNEL, PRIVILEGED_APPROVERS_GROUP

DOMAIN = "northwind.example"
GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"
HELPDESK_ADMIN_ROLE = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
YUBIKEY_5_NFC = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
BREAK_GLASS_GROUP = "9d0c1b2a-3e4f-4a5b-8c7d-6e5f4a3b2c1d"


@dataclass(frozen=True)
class Person:
    slack_id: str
    entra_id: str
    name: str
    email: str


@dataclass(frozen=True)
class Company:
    ada: Person  # new hire, nothing registered yet
    grace: Person  # Ada's manager, has a key
    sam: Person  # helpdesk approver
    alex: Person  # second helpdesk approver
    morgan: Person  # has a key (lost-key stories)
    lin: Person  # Global Administrator: never served by the bot
    pat_guest_slack_id: str  # a Slack guest
    outsider_slack_id: str  # a Slack Connect user from another company
    helpdesk_channel: str = HELPDESK_CHANNEL
    approvers_group: str = APPROVERS_GROUP


def _person(
    slack: SlackSimulator,
    graph: GraphSimulator,
    slack_id: str,
    name: str,
    handle: str,
    *,
    department: str,
    job_title: str,
    manager: Person | None = None,
) -> Person:
    email = f"{handle}@{DOMAIN}"
    user = graph.tenant.add_user(
        name,
        email,
        department=department,
        job_title=job_title,
        created=datetime(2026, 11, 16, 8, 30, tzinfo=UTC),
        manager_id=manager.entra_id if manager else None,
    )
    slack.add_user(slack_id, handle, real_name=name, email=email)
    return Person(slack_id=slack_id, entra_id=user.id, name=name, email=email)


def seed_company(slack: SlackSimulator, graph: GraphSimulator) -> Company:
    grace = _person(
        slack,
        graph,
        "U0GRACE",
        "Grace Hopper",
        "grace",
        department="Engineering",
        job_title="Engineering Manager",
    )
    ada = _person(
        slack,
        graph,
        "U0ADA",
        "Ada Lovelace",
        "ada",
        department="Engineering",
        job_title="Software Engineer",
        manager=grace,
    )
    sam = _person(
        slack, graph, "U0SAM", "Sam Rivera", "sam", department="IT", job_title="Service Desk Analyst"
    )
    alex = _person(slack, graph, "U0ALEX", "Alex Kim", "alex", department="IT", job_title="Service Desk Lead")
    morgan = _person(
        slack,
        graph,
        "U0MORGAN",
        "Morgan Lee",
        "morgan",
        department="Sales",
        job_title="Account Executive",
        manager=grace,
    )
    lin = _person(slack, graph, "U0LIN", "Lin Chen", "lin", department="IT", job_title="Cloud Administrator")
    # Registered when they joined: a method added in the last 24 h would make approvals need a strong
    # verification (security.md IDV-5).
    registered = graph.clock.now() - timedelta(days=30)
    for person in (grace, sam, alex, morgan):
        graph.tenant.add_fido2(
            person.entra_id,
            display_name="YubiKey 5 NFC",
            aaguid=YUBIKEY_5_NFC,
            model="YubiKey 5 NFC",
            created=registered,
        )
    graph.tenant.add_authenticator(morgan.entra_id, display_name="Morgan's iPhone", created=registered)
    graph.tenant.assign_role(lin.entra_id, GLOBAL_ADMIN_ROLE)
    graph.tenant.add_group("keydesk approvers", id=APPROVERS_GROUP, members=[sam.entra_id, alex.entra_id])
    # Sam and Alex also sit in the separate group that alone may approve privileged accounts (IDV-4).
    graph.tenant.add_group(
        "keydesk privileged approvers", id=PRIVILEGED_APPROVERS_GROUP, members=[sam.entra_id, alex.entra_id]
    )
    graph.tenant.add_group("Break-glass accounts", id=BREAK_GLASS_GROUP, members=[])
    slack.add_user("U0PAT", "pat", real_name="Pat Jones", email="pat@partner.example", is_restricted=True)
    slack.add_user(
        "U0OUTSIDE", "casey", real_name="Casey Outsider", email="casey@other.example", team_id="T0OTHERCO"
    )
    slack.add_channel(
        HELPDESK_CHANNEL,
        "helpdesk-keys",
        is_private=True,
        members=[sam.slack_id, alex.slack_id, slack.config.bot_user_id],
    )
    return Company(
        ada=ada,
        grace=grace,
        sam=sam,
        alex=alex,
        morgan=morgan,
        lin=lin,
        pat_guest_slack_id="U0PAT",
        outsider_slack_id="U0OUTSIDE",
    )
