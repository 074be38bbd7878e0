"""`Directory` on Microsoft Graph through msgraph-sdk (v1.0) and msgraph-beta-sdk (hardware OATH tokens,
long passkey challenges).

The SDK builds every request (URL templates, query parameters) and sends it through its request
adapter (auth provider, middleware); answers are read as raw JSON and mapped straight into our values
(`wire.py`, `mapping.py`): no SDK model is deserialised on the way back. Every call goes through
`CallRunner.run` (timeouts, bounded Retry-After retries, error mapping, metrics). The TAP value leaves
`create_tap` only inside `Secret`; Graph error messages are trimmed and the OATH verification code is
masked in them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_adapter import RequestAdapter
from kiota_abstractions.request_information import RequestInformation

from bot.directory import fido2, mapping, wire
from bot.directory.clients import GraphClients, build_clients
from bot.directory.credentials import build_credential
from bot.directory.errors import DirectoryError, InvalidRequest, NotFound, Unavailable
from bot.directory.metrics import DirectoryMetrics
from bot.directory.oath import classify_oath_error
from bot.directory.resilience import CallRunner, RetryPolicy
from bot.directory.types import (
    AuthMethod,
    DirectoryRole,
    DirectoryUser,
    Fido2Attestation,
    Fido2CreationOptions,
    Fido2Policy,
    IssuedTap,
    MethodKind,
    MethodList,
    TapInfo,
    TapPolicy,
    UserRisk,
)
from bot.logs import get_logger
from bot.secret import Secret

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from bot.config import Settings

T = TypeVar("T")
log = get_logger(__name__)
Request = Callable[[], RequestInformation]
CHECK_MEMBER_GROUPS_MAX = 20
MAX_PAGES = 50
_NOT_IN_IDS = frozenset("/\\?%")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# The typed collection (and its item accessor) that deletes each kind; the generic /methods cannot.
DELETE_ROUTES: dict[MethodKind, tuple[str, str]] = {
    MethodKind.FIDO2: ("fido2_methods", "by_fido2_authentication_method_id"),
    MethodKind.AUTHENTICATOR: (
        "microsoft_authenticator_methods",
        "by_microsoft_authenticator_authentication_method_id",
    ),
    MethodKind.PHONE: ("phone_methods", "by_phone_authentication_method_id"),
    MethodKind.SOFTWARE_OATH: ("software_oath_methods", "by_software_oath_authentication_method_id"),
    MethodKind.WINDOWS_HELLO: (
        "windows_hello_for_business_methods",
        "by_windows_hello_for_business_authentication_method_id",
    ),
    MethodKind.TAP: ("temporary_access_pass_methods", "by_temporary_access_pass_authentication_method_id"),
    MethodKind.EMAIL: ("email_methods", "by_email_authentication_method_id"),
    MethodKind.PLATFORM_CREDENTIAL: (
        "platform_credential_methods",
        "by_platform_credential_authentication_method_id",
    ),
}
# Over HTTP/2, hpack logs every encoded header block at DEBUG: the bearer token is recoverable from it.
# httpcore logs response headers at DEBUG. Keep them at WARNING whatever the root level is.
HTTP_STACK_LOGGERS = ("hpack", "h2", "httpcore")


def build_directory(
    settings: Settings,
    *,
    credential: AsyncTokenCredential | None = None,
    retry_policy: RetryPolicy | None = None,
) -> GraphDirectory:
    """The production gateway. Without `credential`, one is chosen from the settings (and closed by
    `close()`); a credential passed in stays the caller's to close."""
    owned = credential is None
    cred = credential if credential is not None else build_credential(settings)
    clients = build_clients(settings.graph_url, cred, timeout=settings.graph_timeout_seconds)
    return GraphDirectory(
        clients,
        timeout=settings.graph_timeout_seconds,
        retry_policy=retry_policy or RetryPolicy(),
        credential=cred if owned else None,
    )


def path_segment(value: str) -> str:
    """An object id, UPN or method id as one URL path segment. The SDK percent-encodes it, but Graph
    may decode `%2F` before routing, so characters no id or UPN contains are refused up front."""
    if not value or not value.strip() or any(c in _NOT_IN_IDS or ord(c) < 33 for c in value):
        raise InvalidRequest("not a valid object id or user principal name", code="badId")
    return value


def odata_quote(value: str) -> str:
    """A string literal for $filter: OData escapes a single quote by doubling it."""
    return "'" + value.replace("'", "''") + "'"


class GraphDirectory:
    def __init__(
        self,
        clients: GraphClients,
        *,
        timeout: float,
        retry_policy: RetryPolicy | None = None,
        credential: AsyncTokenCredential | None = None,
    ) -> None:
        self._clients = clients
        self._v1 = clients.v1
        self._beta = clients.beta
        self._credential = credential
        self.metrics = DirectoryMetrics()
        self._unlisted_seen: set[str] = set()  # failures of the beta token list already warned about
        # user id -> (monotonic time, tokens): the last beta token list, for display surfaces that
        # accept a slightly old one (App Home). Every fresh read refreshes it.
        self._tokens_seen: dict[str, tuple[float, list[AuthMethod]]] = {}
        self._runner = CallRunner(timeout=timeout, policy=retry_policy or RetryPolicy(), metrics=self.metrics)
        quiet_http_stack_loggers()

    @staticmethod
    def preload() -> None:
        """Kept for callers that warm up at startup. Answers no longer build SDK models, so there is
        nothing heavy left to import ahead of the first call."""

    # --- plumbing ---------------------------------------------------------------------------
    async def _call(
        self,
        operation: str,
        request: Request,
        parse: Callable[[wire.JsonObject], T],
        *,
        adapter: RequestAdapter[Any] | None = None,
        idempotent: bool = True,
        hide: Sequence[str] = (),
    ) -> T | None:
        """One request (rebuilt for every attempt) through the runner; the answer's JSON is parsed
        inside the attempt, so an answer we cannot read becomes Unavailable("unreadable"). None when
        Graph answered without a body."""
        send_through = adapter or self._v1.request_adapter

        async def attempt() -> T | None:
            data = await wire.fetch(send_through, request())
            return None if data is None else parse(data)

        return await self._runner.run(operation, attempt, idempotent=idempotent, hide=hide)

    async def _send(
        self,
        operation: str,
        request: Request,
        *,
        adapter: RequestAdapter[Any] | None = None,
        idempotent: bool = True,
        hide: Sequence[str] = (),
    ) -> None:
        """A request whose answer body we do not read (any 2xx is success)."""
        send_through = adapter or self._v1.request_adapter
        await self._runner.run(
            operation, lambda: wire.send(send_through, request()), idempotent=idempotent, hide=hide
        )

    async def _collect(
        self,
        operation: str,
        request: Request,
        parse: Callable[[wire.JsonObject], T],
        *,
        adapter: RequestAdapter[Any] | None = None,
    ) -> list[T]:
        """Every item of a collection, following @odata.nextLink. Never a silent partial answer (a
        truncated role list would fail open): past MAX_PAGES pages it raises."""
        read_page = partial(mapping.page, parse)
        page = await self._call(operation, request, read_page, adapter=adapter)
        items = list(page.items) if page else []
        for _ in range(MAX_PAGES):
            link = page.next_link if page else None
            if not link:
                return items
            page = await self._call(operation, partial(wire.get_url, link), read_page, adapter=adapter)
            items.extend(page.items if page else [])
        raise DirectoryError(f"more than {MAX_PAGES} pages", code="tooManyPages", operation=operation)

    def _user(self, user_id: str) -> Any:
        return self._v1.users.by_user_id(path_segment(user_id))

    # --- users --------------------------------------------------------------------------------
    async def get_user(self, id_or_upn: str) -> DirectoryUser:
        builder = self._user(id_or_upn)
        query = builder.UserItemRequestBuilderGetQueryParameters(select=mapping.USER_FIELDS)
        config = RequestConfiguration(query_parameters=query)
        user = await self._call(
            "get_user", partial(builder.to_get_request_information, config), mapping.to_user
        )
        if user is None:
            raise NotFound(operation="get_user")
        return user

    async def find_users_by_email(self, email: str) -> list[DirectoryUser]:
        email = email.strip()
        if not email or any(ord(c) < 32 for c in email):
            raise InvalidRequest("not an email address", code="badEmail", operation="find_users_by_email")
        literal = odata_quote(email)
        users = self._v1.users
        query = users.UsersRequestBuilderGetQueryParameters(
            filter=f"mail eq {literal} or userPrincipalName eq {literal}", select=mapping.USER_FIELDS
        )
        config = RequestConfiguration(query_parameters=query)
        found = await self._collect(
            "find_users_by_email", partial(users.to_get_request_information, config), mapping.to_user
        )
        return list({u.id: u for u in found if u.id}.values())

    async def get_manager(self, user_id: str) -> DirectoryUser | None:
        builder = self._user(user_id).manager
        query = builder.ManagerRequestBuilderGetQueryParameters(select=mapping.USER_FIELDS)
        config = RequestConfiguration(query_parameters=query)
        try:
            return await self._call(
                "get_manager", partial(builder.to_get_request_information, config), mapping.to_manager
            )
        except NotFound:
            return None  # Graph answers 404 when no manager is set

    async def member_of_groups(self, user_id: str, group_ids: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(g for g in group_ids if g))
        builder = self._user(user_id).check_member_groups
        found: set[str] = set()
        for start in range(0, len(wanted), CHECK_MEMBER_GROUPS_MAX):
            body = {"groupIds": wanted[start : start + CHECK_MEMBER_GROUPS_MAX]}
            answer = await self._call(
                "member_of_groups", partial(wire.post, builder, body), mapping.string_values
            )
            found.update(answer or [])
        return found & set(wanted)

    async def directory_roles(self, user_id: str) -> list[DirectoryRole]:
        active = await self._active_roles(user_id)
        active_ids = {r.template_id for r in active}
        eligible = {
            r.template_id: r for r in await self._eligible_roles(user_id) if r.template_id not in active_ids
        }
        return active + list(eligible.values())

    async def _active_roles(self, user_id: str) -> list[DirectoryRole]:
        builder = self._user(user_id).transitive_member_of.graph_directory_role
        query = builder.GraphDirectoryRoleRequestBuilderGetQueryParameters(
            select=["id", "displayName", "roleTemplateId"]
        )
        config = RequestConfiguration(query_parameters=query)
        return await self._collect(
            "directory_roles", partial(builder.to_get_request_information, config), mapping.to_active_role
        )

    async def _eligible_roles(self, user_id: str) -> list[DirectoryRole]:
        # principalId is the object id: a UPN here would silently match nothing and hide eligibility.
        object_id = user_id if _GUID.match(user_id) else (await self.get_user(user_id)).id
        builder = self._v1.role_management.directory.role_eligibility_schedule_instances
        query = builder.RoleEligibilityScheduleInstancesRequestBuilderGetQueryParameters(
            filter=f"principalId eq {odata_quote(object_id)}", expand=["roleDefinition"]
        )
        config = RequestConfiguration(query_parameters=query)
        return await self._collect(
            "directory_roles_eligible",
            partial(builder.to_get_request_information, config),
            mapping.to_eligible_role,
        )

    # --- authentication methods ----------------------------------------------------------------
    async def list_methods(
        self, user_id: str, *, hardware_oath: bool = True, token_max_age: float = 0.0
    ) -> MethodList:
        """v1.0's list, plus (with `hardware_oath`) the beta-only hardware OATH tokens, asked for at the
        same time. A failed beta call never fails the list: it is logged and its kind is `unchecked`.
        `token_max_age` > 0 lets a display reuse a token list read that many seconds ago or less."""
        builder = self._user(user_id).authentication.methods
        listing = self._collect("list_methods", builder.to_get_request_information, mapping.to_method)
        if not hardware_oath:
            return MethodList(await listing, unchecked=[MethodKind.HARDWARE_OATH])
        seen = self._tokens_seen.get(user_id)
        if seen is not None and token_max_age > 0 and time.monotonic() - seen[0] <= token_max_age:
            return self._merged(await listing, seen[1])
        tokens = asyncio.ensure_future(self._hardware_oath_methods(user_id))
        try:
            methods = await listing
        except BaseException:
            tokens.cancel()
            raise
        found = await tokens
        if found is not None:
            self._tokens_seen[user_id] = (time.monotonic(), found)
        if found is None:
            return MethodList(methods, unchecked=[MethodKind.HARDWARE_OATH])
        return self._merged(methods, found)

    @staticmethod
    def _merged(methods: Sequence[AuthMethod], tokens: Sequence[AuthMethod]) -> MethodList:
        # Should v1.0 ever list tokens too, keep one of each: beta's, which carries the device.
        merged = {m.id: m for m in methods}
        merged.update({t.id: t for t in tokens})
        return MethodList(merged.values())

    async def _hardware_oath_methods(self, user_id: str) -> list[AuthMethod] | None:
        """GET /beta/users/{id}/authentication/hardwareOathMethods; None (logged) when Graph refused or
        failed: tenants may not grant the beta call, and a token list is never worth failing a list."""
        builder = self._beta.users.by_user_id(path_segment(user_id)).authentication.hardware_oath_methods
        try:
            return await self._collect(
                "list_hardware_oath_methods",
                builder.to_get_request_information,
                mapping.to_hardware_oath_method,
                adapter=self._beta.request_adapter,
            )
        except DirectoryError as err:
            # A tenant that refuses the beta call refuses it every time: warn once per kind of failure,
            # then say it quietly, so a missing grant shows in the log without flooding it.
            kind = f"{type(err).__name__}:{err.status}"
            report = log.info if kind in self._unlisted_seen else log.warning
            self._unlisted_seen.add(kind)
            report(
                "directory.hardware_oath_unlisted", error=type(err).__name__, status=err.status, code=err.code
            )
            return None

    async def list_taps(self, user_id: str) -> list[TapInfo]:
        builder = self._user(user_id).authentication.temporary_access_pass_methods
        return await self._collect("list_taps", builder.to_get_request_information, mapping.to_tap_info)

    async def create_tap(self, user_id: str, *, lifetime_minutes: int, usable_once: bool) -> IssuedTap:
        """Retried only on 429 (nothing was created). A 5xx, timeout or dropped connection raises
        Unavailable at once: a pass may exist; the caller reconciles with `list_taps` (REL-3)."""
        builder = self._user(user_id).authentication.temporary_access_pass_methods
        body = {
            "@odata.type": mapping.TAP_ODATA_TYPE,
            "lifetimeInMinutes": lifetime_minutes,
            "isUsableOnce": usable_once,
        }
        issued = await self._call(
            "create_tap", partial(wire.post, builder, body), mapping.to_issued_tap, idempotent=False
        )
        if issued is None:
            raise Unavailable("Graph answered without a pass", code="noPass", operation="create_tap")
        return issued

    async def delete_tap(self, user_id: str, tap_id: str) -> bool:
        item = self._user(user_id).authentication.temporary_access_pass_methods
        return await self._delete(
            "delete_tap", item.by_temporary_access_pass_authentication_method_id(path_segment(tap_id))
        )

    async def delete_method(self, user_id: str, method: AuthMethod) -> bool:
        item = self._method_item(user_id, method)
        adapter = self._beta.request_adapter if method.kind is MethodKind.HARDWARE_OATH else None
        if adapter is not None:
            self._tokens_seen.pop(user_id, None)
        return await self._delete(f"delete_method_{method.kind.value}", item, adapter=adapter)

    def _method_item(self, user_id: str, method: AuthMethod) -> Any:
        if method.kind is MethodKind.HARDWARE_OATH:
            hw = self._beta.users.by_user_id(path_segment(user_id)).authentication.hardware_oath_methods
            return hw.by_hardware_oath_authentication_method_id(path_segment(method.id))
        if method.kind not in DELETE_ROUTES:
            raise InvalidRequest(
                f"a {method.kind.value} method cannot be deleted through Graph",
                code="notDeletable",
                operation="delete_method",
            )
        collection, by_id = DELETE_ROUTES[method.kind]
        return getattr(getattr(self._user(user_id).authentication, collection), by_id)(
            path_segment(method.id)
        )

    async def _delete(self, operation: str, item: Any, *, adapter: RequestAdapter[Any] | None = None) -> bool:
        try:
            await self._send(operation, item.to_delete_request_information, adapter=adapter)
        except NotFound:
            return False
        return True

    # --- FIDO2 provisioning on the user's behalf ------------------------------------------------
    async def fido2_creation_options(
        self, user_id: str, challenge_timeout_minutes: int | None = None
    ) -> Fido2CreationOptions:
        """WebAuthn creation options for a key to be provisioned for the user. Up to five minutes (or
        unset): v1.0, whose challenge always lasts five minutes; longer: beta (5..43200 minutes)."""
        fido2.check_minutes(challenge_timeout_minutes)
        request: Request
        if fido2.use_beta(challenge_timeout_minutes):
            version, adapter = fido2.BETA, self._beta.request_adapter
            request = self._beta_creation_options(user_id, challenge_timeout_minutes or 0)
        else:
            version, adapter = fido2.V1, self._v1.request_adapter
            options_builder = self._user(user_id).authentication.fido2_methods.creation_options
            request = options_builder.to_get_request_information
        try:
            options = await self._call(
                "fido2_creation_options",
                request,
                partial(fido2.to_creation_options, version),
                adapter=adapter,
            )
        except DirectoryError as err:
            raise fido2.classify_fido2_error(err) from None
        if options is None:
            raise Unavailable(
                "Graph answered without creation options",
                code="noOptions",
                operation="fido2_creation_options",
            )
        return options

    def _beta_creation_options(self, user_id: str, minutes: int) -> Request:
        """The beta SDK's builder for this call emits an undefined alias (graph.md §0.6): same path
        parameters (the user id, encoded by the template), the function parameter written inline."""
        builder = self._beta.users.by_user_id(path_segment(user_id)).authentication.fido2_methods
        template = fido2.BETA_CREATION_OPTIONS_TEMPLATE.replace("{minutes}", str(int(minutes)))

        def request() -> RequestInformation:
            info = RequestInformation(Method.GET, template, dict(builder.path_parameters))
            info.headers.try_add("Accept", wire.JSON)
            return info

        return request

    async def register_fido2(
        self,
        user_id: str,
        display_name: str,
        attestation: Fido2Attestation,
        *,
        api_version: str = fido2.V1,
    ) -> AuthMethod:
        """Register a passkey created on a key (raw POST: neither SDK has fido2Methods.post). Retried
        only on 429; after a 5xx or a timeout the challenge may be spent and the method may exist:
        Unavailable, and the caller reconciles with `list_methods`."""
        segment = path_segment(user_id)
        if api_version == fido2.BETA:
            builder: Any = self._beta.users.by_user_id(segment).authentication.fido2_methods
            adapter = self._beta.request_adapter
        else:
            builder, adapter = self._user(user_id).authentication.fido2_methods, self._v1.request_adapter
        body = {
            "@odata.type": fido2.FIDO2_ODATA_TYPE,
            "displayName": display_name,
            "publicKeyCredential": attestation.public_key_credential(),
        }
        try:
            method = await self._call(
                "register_fido2",
                partial(wire.post, builder, body),
                mapping.to_method,
                adapter=adapter,
                idempotent=False,
            )
        except DirectoryError as err:
            raise fido2.classify_fido2_error(err) from None
        if method is None or not method.id:
            raise Unavailable(
                "Graph answered without the new method", code="noMethod", operation="register_fido2"
            )
        return method

    async def revoke_sessions(self, user_id: str) -> None:
        builder = self._user(user_id).revoke_sign_in_sessions
        # 200 {"value": true} (known issue) or 204: any 2xx is success.
        await self._send("revoke_sessions", builder.to_post_request_information)

    async def assign_hardware_oath(
        self, user_id: str, *, serial: str, code: Secret, display_name: str
    ) -> None:
        builder = self._beta.users.by_user_id(path_segment(user_id)).authentication.hardware_oath_methods
        action = builder.assign_and_activate_by_serial_number
        body = {"serialNumber": serial, "verificationCode": code.reveal(), "displayName": display_name}
        self._tokens_seen.pop(user_id, None)
        try:
            await self._send(
                "assign_hardware_oath",
                partial(wire.post, action, body),
                adapter=self._beta.request_adapter,
                idempotent=False,
                hide=[code.reveal()],
            )
        except DirectoryError as err:
            raise classify_oath_error(err) from None

    # --- Entra ID Protection ----------------------------------------------------------------------
    async def user_risk(self, user_id: str) -> UserRisk | None:
        """GET /identityProtection/riskyUsers/{id} (no query options: this call takes none). Graph
        answers 404 for a user Identity Protection never flagged, and 403 without Entra ID P2 or
        IdentityRiskyUser.Read.All (Forbidden, raised for the caller to judge)."""
        item = self._v1.identity_protection.risky_users.by_risky_user_id(path_segment(user_id))
        try:
            return await self._call("user_risk", item.to_get_request_information, mapping.to_user_risk)
        except NotFound:
            return None

    # --- policies and mail ---------------------------------------------------------------------
    async def tap_policy(self) -> TapPolicy:
        return mapping.to_tap_policy(await self._method_config("TemporaryAccessPass", "tap_policy"))

    async def fido2_policy(self) -> Fido2Policy:
        config = await self._method_config("Fido2", "fido2_policy")
        if config.get("passkeyProfiles") is None and mapping.text(config, "defaultPasskeyProfile"):
            # passkeyProfiles is a navigation property: a migrated tenant may need $expand to show it.
            with suppress(InvalidRequest):
                config = await self._method_config("Fido2", "fido2_policy", expand=["passkeyProfiles"])
        return mapping.to_fido2_policy(config)

    async def _method_config(
        self, config_id: str, operation: str, expand: list[str] | None = None
    ) -> wire.JsonObject:
        configs = self._v1.policies.authentication_methods_policy.authentication_method_configurations
        item = configs.by_authentication_method_configuration_id(config_id)
        query = item.AuthenticationMethodConfigurationItemRequestBuilderGetQueryParameters(expand=expand)
        config = RequestConfiguration(query_parameters=query)
        found = await self._call(operation, partial(item.to_get_request_information, config), _as_is)
        if found is None:
            raise NotFound(f"no {config_id} method configuration", operation=operation)
        return found

    async def send_mail(self, sender: str, to: Sequence[str], subject: str, text: str) -> None:
        recipients = [{"emailAddress": {"address": a}} for a in to if a]
        if not recipients:
            raise InvalidRequest(
                "a mail needs at least one recipient", code="noRecipient", operation="send_mail"
            )
        message = {
            "@odata.type": "#microsoft.graph.message",
            "subject": subject,
            "body": {"contentType": "text", "content": text},
            "toRecipients": recipients,
        }
        # The action's parameter names as the metadata (and the SDK) spell them: "Message", "SaveToSentItems".
        body = {"Message": message, "SaveToSentItems": False}
        builder = self._user(sender).send_mail
        await self._send("send_mail", partial(wire.post, builder, body), idempotent=False)

    async def close(self) -> None:
        await self._clients.aclose()
        if self._credential is not None:
            close = getattr(self._credential, "close", None)
            if close is not None:
                await close()


def _as_is(data: wire.JsonObject) -> wire.JsonObject:
    return data


def quiet_http_stack_loggers() -> None:
    for name in HTTP_STACK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
