"""Which method in Entra counts as the person's new registration (pure: no I/O)."""

from __future__ import annotations

from datetime import timedelta

from bot.directory import AuthMethod, MethodKind
from bot.domain.guides import GuideMethod
from bot.store.models.wizard import Wizard

CREATED_SKEW = timedelta(minutes=2)  # Entra's clock and ours may differ a little
KIND_OF = {
    GuideMethod.FIDO2: MethodKind.FIDO2,
    GuideMethod.HARDWARE_OATH: MethodKind.HARDWARE_OATH,
    GuideMethod.AUTHENTICATOR: MethodKind.AUTHENTICATOR,
}


def new_method(methods: list[AuthMethod], row: Wizard, method: GuideMethod) -> AuthMethod | None:
    """The newest method of the guide's kind that was not there at the reveal."""
    kind = KIND_OF[method]
    baseline = set(row.baseline_method_ids) if row.baseline_method_ids is not None else None
    since = row.revealed_at - CREATED_SKEW

    def is_new(m: AuthMethod) -> bool:
        if m.kind is not kind or not m.usable or (baseline is not None and m.id in baseline):
            return False  # not usable: a hardware token assigned but not activated yet
        if m.kind is MethodKind.HARDWARE_OATH and baseline is not None:
            # The baseline left out tokens not activated then, and Graph's createdDateTime of a token
            # may be when it was assigned (before the reveal): activated since the reveal is what counts.
            return True
        return m.created >= since if m.created is not None else baseline is not None

    fresh = [m for m in methods if is_new(m)]
    return max(fresh, key=lambda m: m.created or row.revealed_at) if fresh else None


def pending_method(row: Wizard) -> AuthMethod | None:
    """A method keydesk itself registered (a hardware token) whose completion could not finish yet."""
    if not row.method_id:
        return None
    kind = (
        KIND_OF[GuideMethod.HARDWARE_OATH] if row.method_id.startswith("hardware_oath:") else MethodKind.OTHER
    )
    return AuthMethod(row.method_id, kind, row.method_name, row.revealed_at, model=row.method_model)
