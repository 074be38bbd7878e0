"""The Graph surface the simulator serves, assembled into one route table."""

from __future__ import annotations

from ..router import Router
from . import identity_protection, membership, methods, oath, passkeys, policies, users


def build_router() -> Router:
    router = Router()
    # passkeys before methods: its creationOptions paths would otherwise match {kind}/{method}
    for module in (users, membership, passkeys, methods, oath, policies, identity_protection):
        module.register(router)
    return router
