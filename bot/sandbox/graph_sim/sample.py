"""A small company that exercises every entity the simulator serves (tests and demos start here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .roles import AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, HELPDESK_ADMINISTRATOR
from .tenant import Tenant

OATH_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@dataclass(frozen=True)
class SampleIds:
    ceo: str
    ada: str
    bob: str
    guest: str
    internal_guest: str
    disabled: str
    admin: str
    engineering: str
    platform: str
    helpdesk: str
    admins: str
    ada_fido2: str
    ada_authenticator: str
    ada_phone: str
    ada_windows_hello: str
    ada_software_oath: str
    token_available: str
    token_assigned: str
    token_activated: str


def seed_sample(t: Tenant) -> SampleIds:
    """Users with managers, nested groups, active and eligible roles, every method type, OATH tokens."""
    earlier = t.clock.now() - timedelta(days=400)
    ceo = t.add_user("Grace Hopper", "grace@contoso.com", job_title="CEO", created=earlier)
    ada = t.add_user(
        "Ada Lovelace", "ada@contoso.com", department="Engineering", job_title="Engineer", manager_id=ceo.id
    )
    bob = t.add_user(
        "Bob Stone", "bob@contoso.com", department="Sales", manager_id=ceo.id, on_premises_sync=True
    )
    guest = t.add_user(
        "Sam Partner",
        "sam_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        mail="sam@fabrikam.com",
        user_type="Guest",
    )
    internal_guest = t.add_user("Ivy Contractor", "ivy@contoso.com", user_type="Guest")
    disabled = t.add_user("Dan Gone", "dan@contoso.com", account_enabled=False)
    admin = t.add_user("Alan Admin", "alan@contoso.com", job_title="IT", manager_id=ceo.id)

    engineering = t.add_group("Engineering", members=[ada.id])
    platform = t.add_group("Platform", members=[engineering.id])  # nested: Ada is in it transitively
    helpdesk = t.add_group("Helpdesk", members=[admin.id])
    admins = t.add_group("Tier0 Admins", role_assignable=True, members=[admin.id])
    t.assign_role(admins.id, GLOBAL_ADMINISTRATOR)
    t.assign_role(admin.id, HELPDESK_ADMINISTRATOR)
    t.assign_role(bob.id, AUTHENTICATION_ADMINISTRATOR, eligible=True)

    ada_fido2 = t.add_fido2(ada.id)
    ada_authenticator = t.add_authenticator(ada.id)
    ada_phone = t.add_phone(ada.id)
    ada_windows_hello = t.add_windows_hello(ada.id)
    ada_software_oath = t.add_software_oath(ada.id)
    t.issue_tap(bob.id, lifetime=60, usable_once=True)

    available = t.add_hardware_oath_device("TOTP0001", "Contoso", "Hardware Token 1000", OATH_SECRET)
    assigned = t.add_hardware_oath_device(
        "TOTP0002", "Contoso", "Hardware Token 1000", OATH_SECRET, assigned_to=bob.id
    )
    activated = t.add_hardware_oath_device(
        "TOTP0003", "Contoso", "Hardware Token 1000", OATH_SECRET, assigned_to=ada.id
    )
    t.activate_device(ada.id, activated, t.totp_now(activated), "Ada's token")
    return SampleIds(
        ceo=ceo.id,
        ada=ada.id,
        bob=bob.id,
        guest=guest.id,
        internal_guest=internal_guest.id,
        disabled=disabled.id,
        admin=admin.id,
        engineering=engineering.id,
        platform=platform.id,
        helpdesk=helpdesk.id,
        admins=admins.id,
        ada_fido2=ada_fido2,
        ada_authenticator=ada_authenticator,
        ada_phone=ada_phone,
        ada_windows_hello=ada_windows_hello,
        ada_software_oath=ada_software_oath,
        token_available=available,
        token_assigned=assigned,
        token_activated=activated,
    )
