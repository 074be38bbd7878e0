"""keydesk's own software CTAP 2.1 authenticator, for tests and `--soft` demos (never for real users)."""

from __future__ import annotations

from agent.keys.metadata import KeyModel
from agent.softkey.attestation import root_certificate_der, root_certificate_pem
from agent.softkey.authenticator import Presence, SoftAuthenticator
from agent.softkey.device import SoftCtapDevice
from agent.softkey.hid import SoftHidConnection, soft_descriptor, soft_hid_device
from agent.softkey.source import SoftHands, SoftKeySource, Transport
from agent.softkey.switches import SOFT_AAGUID, SoftKeyProfile, Switches, Touch


def soft_key_model(profile: SoftKeyProfile | None = None) -> KeyModel:
    """The soft key as a catalog entry, so demos show a model name instead of "unknown"."""
    aaguid = (profile or SoftKeyProfile()).aaguid_text
    return KeyModel(aaguid, "keydesk soft key (test authenticator)", "keydesk", ("keydesk",))


__all__ = [
    "SOFT_AAGUID",
    "Presence",
    "SoftAuthenticator",
    "SoftCtapDevice",
    "SoftHands",
    "SoftHidConnection",
    "SoftKeyProfile",
    "SoftKeySource",
    "Switches",
    "Touch",
    "Transport",
    "root_certificate_der",
    "root_certificate_pem",
    "soft_descriptor",
    "soft_hid_device",
    "soft_key_model",
]
