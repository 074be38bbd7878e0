"""Directory objects as Graph writes them: users, groups, directory roles, role assignments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import GraphError
from .model import RoleAssignment, SimGroup, SimUser
from .roles import role_template
from .tenant import Tenant
from .timefmt import graph_time
from .user_props import USER_COLLECTION_PROPERTIES, USER_DEFAULT_PROPERTIES, USER_PROPERTIES

_USER_PROPS_BY_LOWER = {p.lower(): p for p in USER_PROPERTIES}


def _mail_nickname(user: SimUser) -> str:
    return user.upn.split("@", 1)[0]


def user_values(user: SimUser) -> dict[str, Any]:
    """Every user property the simulator models, keyed by Graph's names."""
    guest = user.user_type == "Guest"
    return {
        "id": user.id,
        "displayName": user.display_name,
        "userPrincipalName": user.upn,
        "mail": user.mail,
        "givenName": user.given_name,
        "surname": user.surname,
        "jobTitle": user.job_title,
        "department": user.department,
        "accountEnabled": user.account_enabled,
        "userType": user.user_type,
        "createdDateTime": graph_time(user.created),
        "onPremisesSyncEnabled": True if user.on_premises_sync else None,
        "signInSessionsValidFromDateTime": graph_time(user.sign_in_sessions_valid_from or user.created),
        "mailNickname": _mail_nickname(user),
        "creationType": "Invitation" if user.is_external_guest else None,
        "externalUserState": "Accepted" if user.is_external_guest else None,
        "businessPhones": [],
        "otherMails": [],
        # Non-nullable in the schema; these are the values Graph reports when nobody set them.
        "birthday": "0001-01-01T00:00:00Z",
        "hireDate": "0001-01-01T00:00:00Z",
        "deviceEnrollmentLimit": 5,
        "proxyAddresses": [f"SMTP:{user.mail}"] if user.mail and not guest else [],
    }


def parse_select(select: Sequence[str] | None, resource: str = "microsoft.graph.user") -> list[str] | None:
    if select is None:
        return None
    names: list[str] = []
    for raw in select:
        canonical = _USER_PROPS_BY_LOWER.get(raw.lower())
        if canonical is None:
            raise GraphError(
                400, "Request_BadRequest", f"Could not find a property named '{raw}' on type '{resource}'."
            )
        names.append(canonical)
    return names


def user_json(user: SimUser, select: Sequence[str] | None, *, typed: bool = False) -> dict[str, Any]:
    """A user with $select semantics: only what was asked for, else Graph's default property set."""
    values = user_values(user)
    names = parse_select(select) or list(USER_DEFAULT_PROPERTIES)
    out: dict[str, Any] = {"@odata.type": "#microsoft.graph.user"} if typed else {}
    for name in names:
        if name in values:
            out[name] = values[name]
        else:
            out[name] = [] if name in USER_COLLECTION_PROPERTIES else None
    return out


def group_json(group: SimGroup) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": group.id,
        "deletedDateTime": None,
        "createdDateTime": graph_time(group.created),
        "description": group.description,
        "displayName": group.display_name,
        "groupTypes": [],
        "isAssignableToRole": group.role_assignable,
        "mail": None,
        "mailEnabled": False,
        "mailNickname": group.display_name.lower().replace(" ", "-"),
        "securityEnabled": True,
        "visibility": "Private" if group.role_assignable else None,
        "proxyAddresses": [],
    }


def directory_role_json(tenant: Tenant, template_id: str) -> dict[str, Any]:
    template = role_template(template_id)
    return {
        "@odata.type": "#microsoft.graph.directoryRole",
        "id": tenant.directory_role_id(template_id),
        "deletedDateTime": None,
        "description": template.description,
        "displayName": template.display_name,
        "roleTemplateId": template_id,
    }


def role_definition_json(template_id: str) -> dict[str, Any]:
    template = role_template(template_id)
    return {
        "id": template_id,
        "description": template.description,
        "displayName": template.display_name,
        "isBuiltIn": True,
        "isEnabled": True,
        "resourceScopes": ["/"],
        "templateId": template_id,
        "version": "1",
        "rolePermissions": [
            {"allowedResourceActions": ["microsoft.directory/users/basic/update"], "condition": None}
        ],
    }


def principal_json(tenant: Tenant, principal_id: str) -> dict[str, Any] | None:
    if principal_id in tenant.users:
        return user_json(tenant.users[principal_id], None, typed=True)
    if principal_id in tenant.groups:
        return group_json(tenant.groups[principal_id])
    return None


def role_assignment_json(tenant: Tenant, assignment: RoleAssignment, expand: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": assignment.id,
        "principalId": assignment.principal_id,
        "roleDefinitionId": assignment.role_template_id,
        "directoryScopeId": "/",
        "appScopeId": None,
        "condition": None,
    }
    if "roledefinition" in expand:
        out["roleDefinition"] = role_definition_json(assignment.role_template_id)
    if "principal" in expand:
        out["principal"] = principal_json(tenant, assignment.principal_id)
    return out


def eligibility_instance_json(tenant: Tenant, assignment: RoleAssignment, expand: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": assignment.id,
        "principalId": assignment.principal_id,
        "roleDefinitionId": assignment.role_template_id,
        "directoryScopeId": "/",
        "appScopeId": None,
        "startDateTime": graph_time(assignment.created),
        "endDateTime": None,
        "memberType": "Direct",
        "roleEligibilityScheduleId": assignment.id,
    }
    if "roledefinition" in expand:
        out["roleDefinition"] = role_definition_json(assignment.role_template_id)
    if "principal" in expand:
        out["principal"] = principal_json(tenant, assignment.principal_id)
    return out
