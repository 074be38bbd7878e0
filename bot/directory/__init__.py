"""The Entra gateway: the only package that talks to Microsoft Graph.

Importing this package is cheap: types, errors and the `Directory` protocol only. The msgraph-backed
implementation loads on first use of `build_directory` (or an import of `bot.directory.graph`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.directory.errors import (
    AlreadyExists,
    AttestationRejected,
    ChallengeInvalid,
    DirectoryError,
    Forbidden,
    InvalidRequest,
    KeyAlreadyRegistered,
    KeyModelNotAllowed,
    NotFound,
    Throttled,
    TokenAssignedElsewhere,
    Unauthenticated,
    Unavailable,
    UnknownToken,
    WrongCode,
)
from bot.directory.gateway import Directory
from bot.directory.metrics import DirectoryMetrics, OperationStats
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
    PasskeyProfileRule,
    TapInfo,
    TapPolicy,
)

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.directory.graph import GraphDirectory


def build_directory(settings: Settings, *, credential: Any = None, **kwargs: Any) -> GraphDirectory:
    """The Graph-backed `Directory` (imports msgraph on first call). See `bot.directory.graph`."""
    from bot.directory.graph import build_directory as build

    return build(settings, credential=credential, **kwargs)


__all__ = [
    "AlreadyExists",
    "AttestationRejected",
    "AuthMethod",
    "ChallengeInvalid",
    "Directory",
    "DirectoryError",
    "DirectoryMetrics",
    "DirectoryRole",
    "DirectoryUser",
    "Fido2Attestation",
    "Fido2CreationOptions",
    "Fido2Policy",
    "Forbidden",
    "InvalidRequest",
    "IssuedTap",
    "KeyAlreadyRegistered",
    "KeyModelNotAllowed",
    "MethodKind",
    "MethodList",
    "NotFound",
    "OperationStats",
    "PasskeyProfileRule",
    "TapInfo",
    "TapPolicy",
    "Throttled",
    "TokenAssignedElsewhere",
    "Unauthenticated",
    "Unavailable",
    "UnknownToken",
    "WrongCode",
    "build_directory",
]
