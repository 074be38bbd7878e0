"""Entra ID Protection's risky users: the record Graph keeps for a user it once flagged, and its JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import GraphError
from .model import SimUser
from .timefmt import graph_time

RISK_STATES = ("none", "confirmedSafe", "remediated", "dismissed", "atRisk", "confirmedCompromised")
RISK_LEVELS = ("low", "medium", "high", "hidden", "none")


@dataclass
class RiskyUserRecord:
    """A user stays in riskyUsers once flagged; remediation or dismissal changes the state, not presence."""

    user_id: str
    risk_state: str
    risk_level: str
    risk_detail: str
    updated: datetime
    is_processing: bool = False


def risky_user_json(record: RiskyUserRecord, user: SimUser | None) -> dict[str, Any]:
    return {
        "id": record.user_id,
        "isDeleted": user is None,
        "isProcessing": record.is_processing,
        "riskLastUpdatedDateTime": graph_time(record.updated),
        "riskLevel": record.risk_level,
        "riskState": record.risk_state,
        "riskDetail": record.risk_detail,
        "userDisplayName": user.display_name if user else None,
        "userPrincipalName": user.upn if user else None,
    }


def not_licensed() -> GraphError:
    """What a tenant without Entra ID P2 (or an app without IdentityRiskyUser.Read.All) gets."""
    return GraphError(
        403,
        "Authorization_RequestDenied",
        "Your tenant is not licensed for this feature, or the application lacks IdentityRiskyUser.Read.All.",
    )


def risky_user_not_found(key: str) -> GraphError:
    """Identity Protection answers a user it never flagged with its own 404."""
    return GraphError(404, "resourceNotFound", f"Resource '{key}' does not exist in riskyUsers.")
