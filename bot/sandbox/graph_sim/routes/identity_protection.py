"""Entra ID Protection: GET a user's risk record (the product reads it; tests set it on the tenant)."""

from __future__ import annotations

from ..risk import not_licensed, risky_user_json, risky_user_not_found
from ..router import Ctx, Reply, Router


def get_risky_user(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    if not tenant.identity_protection_licensed:
        raise not_licensed()
    key = ctx.params["user"]
    record = tenant.risky_users.get(key.lower())
    if record is None:
        raise risky_user_not_found(key)
    body = risky_user_json(record, tenant.users.get(record.user_id))
    return Reply(200, {"@odata.context": ctx.context("identityProtection/riskyUsers/$entity"), **body})


def register(router: Router) -> None:
    router.add("GET", "/identityProtection/riskyUsers/{user}", get_risky_user)
