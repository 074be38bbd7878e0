"""The authentication methods policy (GET only: the product reads it, admins change it in tests)."""

from __future__ import annotations

from ..errors import resource_not_found
from ..odata import collection, entity, expands
from ..policy_json import configurations, methods_policy
from ..router import Ctx, Reply, Router

_BASE = "/policies/authenticationMethodsPolicy"


def get_policy(ctx: Ctx) -> Reply:
    return entity(
        ctx,
        methods_policy(ctx.tenant, ctx.version, expands(ctx)),
        "policies/authenticationMethodsPolicy/$entity",
    )


def list_configurations(ctx: Ctx) -> Reply:
    items = configurations(ctx.tenant, ctx.version, expands(ctx))
    return collection(
        ctx, items, "policies/authenticationMethodsPolicy/authenticationMethodConfigurations", paged=False
    )


def get_configuration(ctx: Ctx) -> Reply:
    wanted = ctx.params["config"].lower()
    for item in configurations(ctx.tenant, ctx.version, expands(ctx)):
        if item["id"].lower() == wanted:
            context = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity"
            return entity(ctx, item, context)
    raise resource_not_found(ctx.params["config"])


def register(router: Router) -> None:
    router.add("GET", _BASE, get_policy)
    router.add("GET", _BASE + "/authenticationMethodConfigurations", list_configurations)
    router.add("GET", _BASE + "/authenticationMethodConfigurations/{config}", get_configuration)
