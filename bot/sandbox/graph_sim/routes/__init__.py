"""The Graph surface the simulator serves, assembled into one route table."""

from __future__ import annotations

from ..router import Router
from . import membership, methods, oath, policies, users


def build_router() -> Router:
    router = Router()
    for module in (users, membership, methods, oath, policies):
        module.register(router)
    return router
