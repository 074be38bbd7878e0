"""Group membership, directory roles, role assignments and PIM eligibility."""

from __future__ import annotations

from typing import Any

from ..entities import directory_role_json, eligibility_instance_json, group_json, role_assignment_json
from ..errors import GraphError, bad_request
from ..model import RoleAssignment
from ..odata import collection, csv_option, expands, filtered, project
from ..odata_filter import Compare, parse_filter
from ..router import Ctx, Reply, Router

MAX_CHECK_IDS = 20
_ASSIGNMENT_FILTER = {p.lower(): p for p in ("principalId", "roleDefinitionId", "directoryScopeId", "id")}
_CASTS = {"graph.group": "group", "graph.directoryrole": "directoryRole"}


def _no_filter(ctx: Ctx) -> None:
    if "filter" in ctx.query:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "Filter on directory object memberships needs advanced query support "
            "(ConsistencyLevel: eventual).",
        )


def _memberships(ctx: Ctx, *, transitive: bool, cast: str | None) -> Reply:
    _no_filter(ctx)
    user = ctx.user()
    tenant = ctx.tenant
    items: list[dict[str, Any]] = []
    if cast in (None, "group"):
        groups = tenant.transitive_groups(user.id) if transitive else tenant.direct_groups(user.id)
        items += [group_json(g) for g in groups]
    if cast in (None, "directoryRole"):
        roles = tenant.active_role_templates(user.id, transitive=transitive)
        items += [directory_role_json(tenant, t) for t in roles]
    select = csv_option(ctx, "select")
    context = {None: "directoryObjects", "group": "groups", "directoryRole": "directoryRoles"}[cast]
    return collection(ctx, [project(i, select) for i in items], context)


def member_of(ctx: Ctx) -> Reply:
    return _memberships(ctx, transitive=False, cast=None)


def transitive_member_of(ctx: Ctx) -> Reply:
    return _memberships(ctx, transitive=True, cast=None)


def _cast(ctx: Ctx) -> str:
    cast = _CASTS.get(ctx.params["cast"].lower().replace("microsoft.graph.", "graph."))
    if cast is None:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{ctx.params['cast']}'.")
    return cast


def member_of_cast(ctx: Ctx) -> Reply:
    return _memberships(ctx, transitive=False, cast=_cast(ctx))


def transitive_member_of_cast(ctx: Ctx) -> Reply:
    return _memberships(ctx, transitive=True, cast=_cast(ctx))


def check_member_groups(ctx: Ctx) -> Reply:
    user = ctx.user()
    ids = ctx.json_object().get("groupIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("groupIds must be a collection of strings.", "Request_BadRequest")
    if len(ids) > MAX_CHECK_IDS:
        raise bad_request(f"The number of group ids cannot exceed {MAX_CHECK_IDS}.", "Request_BadRequest")
    mine = ctx.tenant.group_ids_of(user.id)
    return Reply(
        200, {"@odata.context": ctx.context("Collection(Edm.String)"), "value": [i for i in ids if i in mine]}
    )


def _assignment_values(a: RoleAssignment) -> dict[str, object]:
    return {
        "id": a.id,
        "principalId": a.principal_id,
        "roleDefinitionId": a.role_template_id,
        "directoryScopeId": "/",
    }


def role_assignments(ctx: Ctx) -> Reply:
    active = [a for a in ctx.tenant.role_assignments if not a.eligible]
    found = filtered(ctx, active, _ASSIGNMENT_FILTER, "unifiedRoleAssignment", _assignment_values)
    expand = expands(ctx)
    items = [role_assignment_json(ctx.tenant, a, expand) for a in found]
    return collection(ctx, items, "roleManagement/directory/roleAssignments")


def eligibility_instances(ctx: Ctx) -> Reply:
    eligible = [a for a in ctx.tenant.role_assignments if a.eligible]
    found = filtered(
        ctx, eligible, _ASSIGNMENT_FILTER, "unifiedRoleEligibilityScheduleInstance", _assignment_values
    )
    expand = expands(ctx)
    items = [eligibility_instance_json(ctx.tenant, a, expand) for a in found]
    return collection(ctx, items, "roleManagement/directory/roleEligibilityScheduleInstances")


def transitive_role_assignments(ctx: Ctx) -> Reply:
    """Beta: assignments that reach a principal directly or through role-assignable groups."""
    text = ctx.query.get("filter", "")
    node = parse_filter(text, _ASSIGNMENT_FILTER, "unifiedRoleAssignment") if text else None
    if not isinstance(node, Compare) or node.prop != "principalId" or not isinstance(node.value, str):
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "transitiveRoleAssignments requires $filter=principalId eq '{id}'.",
        )
    principals = {node.value} | ctx.tenant.group_ids_of(node.value)
    found = [a for a in ctx.tenant.role_assignments if not a.eligible and a.principal_id in principals]
    expand = expands(ctx)
    items = [role_assignment_json(ctx.tenant, a, expand) for a in found]
    return collection(ctx, items, "roleManagement/directory/transitiveRoleAssignments")


def register(router: Router) -> None:
    router.add("GET", "/users/{user}/memberOf", member_of)
    router.add("GET", "/users/{user}/memberOf/{cast}", member_of_cast)
    router.add("GET", "/users/{user}/transitiveMemberOf", transitive_member_of)
    router.add("GET", "/users/{user}/transitiveMemberOf/{cast}", transitive_member_of_cast)
    router.add("POST", "/users/{user}/checkMemberGroups", check_member_groups)
    router.add("GET", "/roleManagement/directory/roleAssignments", role_assignments)
    router.add("GET", "/roleManagement/directory/roleEligibilityScheduleInstances", eligibility_instances)
    router.add(
        "GET",
        "/roleManagement/directory/transitiveRoleAssignments",
        transitive_role_assignments,
        beta_only=True,
    )
