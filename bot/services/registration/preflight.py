"""Before the wizard starts: what the FIDO2 policy means for this person, and the methods already there."""

from __future__ import annotations

from bot.directory import DirectoryError, MethodKind
from bot.logs import get_logger
from bot.services.registration.guides import library
from bot.services.runtime import Runtime
from bot.slack.wizard_views import Preflight

log = get_logger(__name__)


async def preflight(rt: Runtime, entra_id: str) -> Preflight:
    """What the FIDO2 policy means for this person; unchecked (and said so) when Entra doesn't answer."""
    org = library(rt).org
    base = Preflight(key_models=org.key_models, pin_min_length=org.pin_min_length)
    try:
        policy = await rt.directory.fido2_policy()
        groups = [*policy.include_group_ids, *policy.exclude_group_ids]
        member = await rt.directory.member_of_groups(entra_id, groups) if groups else set()
    except DirectoryError as exc:
        log.warning("registration.preflight_unavailable", error=type(exc).__name__)
        return base
    included = policy.include_all_users or bool(member & set(policy.include_group_ids))
    return Preflight(
        checked=True,
        fido2_enabled=policy.enabled,
        self_service=policy.self_service_allowed,
        in_scope=included and not member & set(policy.exclude_group_ids),
        restriction=policy.enforcement_type if policy.restrictions_enforced else None,
        restricted_models=len(policy.aaguids),
        attestation=policy.attestation_enforced,
        key_models=org.key_models,
        pin_min_length=org.pin_min_length,
    )


async def baseline(rt: Runtime, entra_id: str) -> list[str] | None:
    """The usable methods already there at the reveal (None: unknown, then only creation times count).

    Hardware tokens included (the person may switch to the token guide later): one beta call per setup.
    If Graph would not list them, the baseline is unknown rather than silently without them, or an
    old token without a creation time would later look new. A token assigned but not activated is left
    out: activating it during the setup is the registration we watch for."""
    try:
        methods = await rt.directory.list_methods(entra_id)
    except DirectoryError as exc:
        log.warning("registration.baseline_unavailable", error=type(exc).__name__)
        return None
    if not methods.checked(MethodKind.HARDWARE_OATH):
        log.warning("registration.baseline_without_tokens")
        return None
    return [m.id for m in methods if m.usable]
