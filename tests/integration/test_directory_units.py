"""The gateway's pure parts: credential choice, passkey-profile folding, hardware OATH error reading,
Retry-After parsing and the masks on what we show of a method."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from azure.identity.aio import CertificateCredential, ClientSecretCredential, DefaultAzureCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bot.config import Settings
from bot.directory import (
    Forbidden,
    InvalidRequest,
    NotFound,
    PasskeyProfileRule,
    TokenAssignedElsewhere,
    Unavailable,
    UnknownToken,
    WrongCode,
)
from bot.directory.credentials import StaticTokenCredential, build_credential, credential_kind
from bot.directory.errormap import retry_after_of, safe_text
from bot.directory.mapping import fold_profiles, mask_email, mask_phone, method_kind
from bot.directory.metrics import DirectoryMetrics
from bot.directory.oath import classify_oath_error
from bot.directory.resilience import CallRunner, RetryPolicy
from bot.directory.types import MethodKind

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"
KEY_A, KEY_B, KEY_C = "aaaaaaaa-0000-0000-0000-000000000000", "bbbbbbbb-0000-0000-0000-000000000000", "cccc"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


# --- credentials ---------------------------------------------------------------------------------------


async def test_static_token_for_a_simulator_never_shows_the_token() -> None:
    credential = build_credential(settings(graph_url="http://127.0.0.1:9", graph_token="sekret-token-1"))
    assert isinstance(credential, StaticTokenCredential)
    assert (await credential.get_token("https://graph.microsoft.com/.default", enable_cae=True)).token == (
        "sekret-token-1"
    )
    assert "sekret" not in repr(credential)


async def test_client_secret_wins_over_certificate_and_default() -> None:
    chosen = settings(
        azure_tenant_id=TENANT,
        azure_client_id=CLIENT,
        azure_client_secret="s3cret",
        azure_client_certificate_path="/nonexistent.pem",
    )
    assert credential_kind(chosen) == "client-secret"
    credential = build_credential(chosen)
    assert isinstance(credential, ClientSecretCredential)
    await credential.close()


async def test_certificate_credential_from_a_pem(tmp_path: Path) -> None:
    pem = tmp_path / "keydesk.pem"
    pem.write_bytes(_self_signed_pem())
    credential = build_credential(
        settings(azure_tenant_id=TENANT, azure_client_id=CLIENT, azure_client_certificate_path=str(pem))
    )
    assert isinstance(credential, CertificateCredential)
    await credential.close()


async def test_default_azure_credential_for_managed_identity() -> None:
    credential = build_credential(settings(azure_tenant_id=TENANT, azure_client_id=CLIENT))
    assert isinstance(credential, DefaultAzureCredential)
    await credential.close()


def test_a_secret_without_tenant_and_client_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="AZURE_TENANT_ID and AZURE_CLIENT_ID"):
        build_credential(settings(azure_client_secret="s3cret"))


def _self_signed_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # Entra signs with RS256
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keydesk-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private + cert.public_bytes(serialization.Encoding.PEM)


# --- passkey profiles -----------------------------------------------------------------------------------


def profile(enforced: bool, kind: str | None, *aaguids: str, attestation: bool = False) -> PasskeyProfileRule:
    return PasskeyProfileRule("p", None, attestation, enforced, kind, tuple(aaguids), ("deviceBound",))


def test_fold_keeps_only_keys_every_profile_allows() -> None:
    folded = fold_profiles([profile(True, "allow", KEY_A, KEY_B), profile(True, "allow", KEY_B, KEY_C)])
    assert folded == (False, True, "allow", (KEY_B,))


def test_fold_removes_blocked_keys_from_allow_lists() -> None:
    folded = fold_profiles([profile(True, "allow", KEY_A, KEY_B), profile(True, "block", KEY_A)])
    assert folded == (False, True, "allow", (KEY_B,))


def test_fold_of_block_lists_blocks_their_union() -> None:
    folded = fold_profiles(
        [profile(True, "block", KEY_A), profile(True, "block", KEY_B), profile(False, None)]
    )
    assert folded == (False, True, "block", (KEY_A, KEY_B))


def test_fold_without_restrictions_allows_all_and_attestation_is_any() -> None:
    folded = fold_profiles([profile(False, "block", KEY_A), profile(False, None, attestation=True)])
    assert folded == (True, False, None, ())


# --- hardware OATH errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidRequest("The verification code is invalid.", code="badRequest"), WrongCode),
        (InvalidRequest("verificationCode must be the 6-digit code.", code="badRequest"), WrongCode),
        (
            NotFound("Hardware OATH token with serial number 'X' was not found.", code="itemNotFound"),
            UnknownToken,
        ),
        (InvalidRequest("No hardware token with serial number 'X' exists.", code="badRequest"), UnknownToken),
        (
            InvalidRequest("The token is already assigned to another user.", code="badRequest"),
            TokenAssignedElsewhere,
        ),
        (NotFound("Resource 'ghost' does not exist.", code="Request_ResourceNotFound"), NotFound),
        (
            NotFound("Resource 'token.admin@contoso.com' does not exist.", code="Request_ResourceNotFound"),
            NotFound,
        ),
        (
            InvalidRequest("Converged UserCredentialPolicy does not allow this.", code="badRequest"),
            InvalidRequest,
        ),
        (Forbidden("Insufficient privileges.", code="Authorization_RequestDenied"), Forbidden),
        (Unavailable("The service is unavailable.", code="serviceNotAvailable"), Unavailable),
    ],
)
def test_oath_errors_are_read_into_our_types(error: Exception, expected: type[Exception]) -> None:
    classified = classify_oath_error(error)  # type: ignore[arg-type]
    assert type(classified) is expected


def test_reclassified_errors_keep_code_and_request_id_but_not_grahps_words() -> None:
    original = InvalidRequest("Code 123456 is invalid.", code="badRequest", status=400, request_id="r-1")
    classified = classify_oath_error(original)
    assert isinstance(classified, WrongCode)
    assert (classified.code, classified.status, classified.request_id) == ("badRequest", 400, "r-1")
    assert "123456" not in str(classified)


# --- retry-after, masks, kinds --------------------------------------------------------------------------


class _Answer(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        self.response_headers = headers


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_of(_Answer({"retry-after": "7"})) == 7
    assert retry_after_of(_Answer({"retry-after": "0.5"})) == 0.5
    at = dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.UTC)
    http_date = "Thu, 01 Jan 2026 00:01:00 GMT"
    assert retry_after_of(_Answer({"retry-after": http_date}), now=at.timestamp()) == 30
    assert retry_after_of(_Answer({"retry-after": "soon"})) is None
    assert retry_after_of(_Answer({})) is None


def test_safe_text_is_one_short_line_with_secrets_masked() -> None:
    text = safe_text("bad code 654321\r\nX-Injected: yes " + "x" * 500, hide=["654321"])
    assert text is not None and "654321" not in text and "\n" not in text and len(text) <= 200


def test_masks_show_only_enough_to_recognise() -> None:
    assert mask_phone("+1 206 555 0142") == "+1 ********42"
    assert mask_phone("0612345678") == "********78"
    assert mask_email("ada.lovelace@contoso.com") == "a***@contoso.com"


def test_method_kinds_from_odata_types() -> None:
    assert method_kind("#microsoft.graph.fido2AuthenticationMethod") is MethodKind.FIDO2
    assert method_kind("#microsoft.graph.hardwareOathAuthenticationMethod") is MethodKind.HARDWARE_OATH
    assert method_kind("#microsoft.graph.qrCodePinAuthenticationMethod") is MethodKind.OTHER
    assert method_kind(None) is MethodKind.OTHER
    assert {k for k in MethodKind if k.phishing_resistant} == {
        MethodKind.FIDO2,
        MethodKind.WINDOWS_HELLO,
        MethodKind.PLATFORM_CREDENTIAL,
    }


async def test_an_unreadable_answer_becomes_unavailable_without_its_text() -> None:
    metrics = DirectoryMetrics()
    runner = CallRunner(timeout=1, policy=RetryPolicy(), metrics=metrics)

    async def garbled() -> None:
        raise ValueError("body was: {'temporaryAccessPass': 'Xy7#kP2q'}")

    with pytest.raises(Unavailable) as caught:
        await runner.run("create_tap", garbled, idempotent=False)
    assert caught.value.code == "unreadable" and "Xy7" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert (metrics["create_tap"].calls, metrics["create_tap"].failures) == (1, 1)
