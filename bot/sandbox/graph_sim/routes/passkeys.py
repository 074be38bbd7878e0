"""FIDO2 provisioning on a user's behalf: `fido2Methods/creationOptions` (v1.0: fixed five minutes;
beta: `creationOptions(challengeTimeoutInMinutes=N)`) and `POST fido2Methods`."""

from __future__ import annotations

from ..errors import GraphError, bad_request
from ..methods_json import method_json
from ..passkeys import MAX_CHALLENGE_MINUTES, MIN_CHALLENGE_MINUTES, V1_CHALLENGE_MINUTES
from ..router import BETA, Ctx, Reply, Router

_PARAM = "challengeTimeoutInMinutes"
_WRITABLE = {"displayName", "publicKeyCredential"}
_FIDO2_TYPE = "microsoft.graph.fido2AuthenticationMethod"


def creation_options(ctx: Ctx) -> Reply:
    """`creationOptions()` or `creationOptions`: v1.0 always five minutes; beta also reads the query form."""
    raw = ctx.query.get(_PARAM.lower())
    if raw is not None and ctx.version != BETA:
        raise bad_request(f"The parameter '{_PARAM}' is not supported by this version of the API.")
    return _options(ctx, _minutes(raw) if raw is not None else V1_CHALLENGE_MINUTES)


def creation_options_with_timeout(ctx: Ctx) -> Reply:
    """beta `creationOptions(challengeTimeoutInMinutes=N)`; an `@alias` must be defined in the query."""
    raw = ctx.params["minutes"]
    if raw.startswith("@"):
        defined = ctx.query.get(raw.lower())
        if defined is None:
            raise bad_request(f"The parameter alias '{raw}' is not defined in the query string.")
        raw = defined
    return _options(ctx, _minutes(raw))


def _minutes(raw: str) -> int:
    try:
        minutes = int(raw)
    except ValueError:
        raise bad_request(f"Cannot convert the literal '{raw}' to the expected type 'Edm.Int32'.") from None
    if not MIN_CHALLENGE_MINUTES <= minutes <= MAX_CHALLENGE_MINUTES:
        raise bad_request(f"{_PARAM} must be between {MIN_CHALLENGE_MINUTES} and {MAX_CHALLENGE_MINUTES}.")
    return minutes


def _options(ctx: Ctx, minutes: int) -> Reply:
    user = ctx.user()
    body = ctx.tenant.creation_options(user.id, minutes, ctx.version)
    context = ctx.context("microsoft.graph.webauthnCredentialCreationOptions")
    if ctx.version == BETA:
        # As the beta documentation shows it: the options wrapped in "value".
        return Reply(200, {"@odata.context": context, "value": body})
    return Reply(200, {"@odata.context": context, **body})


def register_passkey(ctx: Ctx) -> Reply:
    user = ctx.user()
    body = ctx.json_object()
    for key in body:
        if not key.startswith("@odata.") and key not in _WRITABLE:
            raise GraphError(
                400,
                "BadRequest",
                f"The property '{key}' does not exist on type '{_FIDO2_TYPE}'. Make sure to only use "
                "property names that are defined by the type or mark the type as open type.",
            )
    credential = body.get("publicKeyCredential")
    if not isinstance(credential, dict):
        raise bad_request("publicKeyCredential is required.")
    name = body.get("displayName")
    if name is not None and not isinstance(name, str):
        raise bad_request("displayName must be a string.")
    method = ctx.tenant.register_passkey(user.id, name, credential, ctx.version)
    context = f"users('{user.id}')/authentication/fido2Methods/$entity"
    return Reply(201, {"@odata.context": ctx.context(context), **method_json(ctx.tenant, method)})


def register(router: Router) -> None:
    base = "/users/{user}/authentication/fido2Methods"
    router.add("GET", f"{base}/creationOptions()", creation_options)
    router.add("GET", f"{base}/creationOptions", creation_options)
    router.add(
        "GET",
        f"{base}/creationOptions(challengeTimeoutInMinutes={{minutes}})",
        creation_options_with_timeout,
        beta_only=True,
    )
    router.add("POST", base, register_passkey)
