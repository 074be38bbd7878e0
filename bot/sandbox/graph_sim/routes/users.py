"""Users: lookup, filter, manager, session revocation, sendMail."""

from __future__ import annotations

from typing import Any

from ..entities import parse_select, user_json, user_values
from ..errors import GraphError, bad_request
from ..model import Recipient, SentMail
from ..odata import collection, csv_option, entity, filtered
from ..router import Ctx, Reply, Router

_FILTERABLE = {
    p.lower(): p
    for p in (
        "id",
        "mail",
        "userPrincipalName",
        "displayName",
        "accountEnabled",
        "userType",
        "department",
        "jobTitle",
        "givenName",
        "surname",
    )
}


def list_users(ctx: Ctx) -> Reply:
    if "search" in ctx.query and ctx.headers.get("consistencylevel", "").lower() != "eventual":
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: "
            "'ConsistencyLevel: eventual'",
        )
    if "search" in ctx.query:
        raise GraphError(400, "Request_UnsupportedQuery", "$search is not supported by the simulator.")
    select = parse_select(csv_option(ctx, "select"))
    users = filtered(ctx, list(ctx.tenant.users.values()), _FILTERABLE, "User", user_values)
    return collection(ctx, [user_json(u, select) for u in users], "users")


def get_user(ctx: Ctx) -> Reply:
    return entity(ctx, user_json(ctx.user(), csv_option(ctx, "select")), "users/$entity")


def get_manager(ctx: Ctx) -> Reply:
    user = ctx.user()
    manager = ctx.tenant.users.get(user.manager_id or "")
    if manager is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            "Resource 'manager' does not exist or one of its queried reference-property objects "
            "are not present.",
        )
    return entity(ctx, user_json(manager, csv_option(ctx, "select"), typed=True), "directoryObjects/$entity")


def revoke_sessions(ctx: Ctx) -> Reply:
    ctx.tenant.revoke_sessions(ctx.user().id)
    return Reply(200, {"@odata.context": ctx.context("Edm.Boolean"), "value": True})


def _recipients(raw: object, field: str) -> tuple[Recipient, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise bad_request(f"{field} must be a collection.", "ErrorInvalidRecipients")
    found: list[Recipient] = []
    for item in raw:
        address = (item or {}).get("emailAddress", {}) if isinstance(item, dict) else {}
        if not isinstance(address, dict) or not address.get("address"):
            raise bad_request("At least one recipient is not valid.", "ErrorInvalidRecipients")
        found.append(Recipient(str(address["address"]), address.get("name")))
    return tuple(found)


def send_mail(ctx: Ctx) -> Reply:
    user = ctx.user()
    # OData action parameters match case-insensitively: "Message" and "message" are the same parameter.
    raw = ctx.json_object()
    body = {str(k).lower(): v for k, v in raw.items()}
    message: Any = body.get("message")
    if not isinstance(message, dict):
        raise bad_request("Value cannot be null. Parameter name: Message", "ErrorInvalidParameter")
    if not user.mail:
        raise GraphError(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    to = _recipients(message.get("toRecipients"), "toRecipients")
    if not to:
        raise bad_request(
            "At least one recipient is not valid., Recipient is missing.", "ErrorInvalidRecipients"
        )
    raw_content = message.get("body")
    content: dict[str, Any] = raw_content if isinstance(raw_content, dict) else {}
    ctx.tenant.record_mail(
        SentMail(
            sender_id=user.id,
            sender_upn=user.upn,
            subject=str(message.get("subject") or ""),
            body_type=str(content.get("contentType") or "text"),
            body=str(content.get("content") or ""),
            to=to,
            cc=_recipients(message.get("ccRecipients"), "ccRecipients"),
            save_to_sent_items=body.get("savetosentitems", True) is not False,
            sent_at=ctx.now,
            raw=raw,
        )
    )
    return Reply(202)


def register(router: Router) -> None:
    router.add("GET", "/users", list_users)
    router.add("GET", "/users/{user}", get_user)
    router.add("GET", "/users/{user}/manager", get_manager)
    router.add("POST", "/users/{user}/revokeSignInSessions", revoke_sessions)
    router.add("POST", "/users/{user}/sendMail", send_mail)
