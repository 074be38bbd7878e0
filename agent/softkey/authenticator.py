"""An in-process CTAP 2.1 authenticator for tests and demos: the project's own, written from the spec.

It speaks CBOR commands (`handle`), keeps its state in memory, and models the desk quirks as
switches: the reset window after power-up, touch given / not given / declined, forced PIN change,
a full key, no serial number, PIN retries and blocking. `plug()`/`unplug()` simulate a re-plug.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import sha256
from threading import Event
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.ctap import STATUS, CtapError

from agent.softkey import client_pin, config_cmd, cred_mgmt, get_assertion, make_credential
from agent.softkey.pinuv import protocol
from agent.softkey.state import Credential, Enumeration, PinState, Token
from agent.softkey.switches import SoftKeyProfile, Switches, Touch

ERR = CtapError.ERR


@dataclass(frozen=True)
class Presence:
    """How this request can ask for a touch: keep-alive callback and the host's cancel event."""

    on_keepalive: Callable[[int], None] | None = None
    event: Event | None = None


class SoftAuthenticator:
    def __init__(
        self,
        profile: SoftKeyProfile | None = None,
        switches: Switches | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.profile = profile or SoftKeyProfile()
        self.switches = switches or Switches()
        self._clock = clock
        self.credentials: list[Credential] = []
        self.pin = PinState(retries=self.profile.max_pin_retries)
        self.token = Token()
        self.enumeration: Enumeration | None = None
        self.always_uv = False
        self.plugged = True
        self.generation = 0
        self.touch_requests = 0
        self.winks = 0
        self.resets = 0
        self._power_up()

    # -- the physical key ------------------------------------------------------------------

    def _power_up(self) -> None:
        self.powered_at = self._clock()
        self.key_agreement = ec.generate_private_key(ec.SECP256R1())
        self.token.regenerate()
        self.pin.failures_since_boot = 0
        self.enumeration = None
        self.generation += 1

    def unplug(self) -> None:
        self.plugged = False

    def plug(self) -> None:
        self.plugged = True
        self._power_up()

    def power_cycle(self) -> None:
        self.unplug()
        self.plug()

    # -- presets for tests (set state directly, as if done earlier) ------------------------

    def preset_pin(self, pin: str, *, force_change: bool = False) -> None:
        self.pin.pin_hash = sha256(pin.encode()).digest()[:16]
        self.pin.code_points = len(pin)
        self.pin.retries = self.profile.max_pin_retries
        self.pin.force_change = force_change

    def preset_pin_retries(self, retries: int) -> None:
        self.pin.retries = retries

    @property
    def pin_protocols(self) -> tuple[int, ...]:
        return self.profile.pin_protocols if self.profile.ctap21 else (1,)

    @property
    def discoverable(self) -> list[Credential]:
        return [c for c in self.credentials if c.discoverable]

    # -- the CTAP2 command interface -------------------------------------------------------

    def handle(self, request: bytes, presence: Presence | None = None) -> bytes:
        """One CTAPHID_CBOR message in, status byte + CBOR out."""
        if not request:
            return bytes([ERR.INVALID_LENGTH])
        try:
            params = cbor.decode(request[1:]) if len(request) > 1 else {}
            if not isinstance(params, Mapping):
                raise CtapError(ERR.CBOR_UNEXPECTED_TYPE)
            response = self._dispatch(request[0], dict(params), presence or Presence())
        except CtapError as exc:
            return bytes([int(exc.code)])
        except ValueError:
            return bytes([ERR.INVALID_CBOR])
        return b"\x00" + (cbor.encode(response) if response else b"")

    def _dispatch(self, command: int, params: dict[int, Any], presence: Presence) -> dict[Any, Any] | None:
        if self.enumeration is not None and command not in self.enumeration.commands:
            self.enumeration = None  # any other command ends an enumeration (CTAP 2.1)
        handler = _COMMANDS.get(command)
        if handler is None or (command in _CTAP21_ONLY and not self.profile.ctap21):
            raise CtapError(ERR.INVALID_COMMAND)
        try:
            return handler(self, params, presence)
        except KeyError as exc:
            raise CtapError(ERR.MISSING_PARAMETER) from exc

    def info(self) -> dict[int, Any]:
        p = self.profile
        options: dict[str, bool] = {"rk": True, "up": True, "plat": False, "clientPin": self.pin.is_set}
        if p.ctap21:
            options.update(
                credMgmt=True,
                authnrCfg=True,
                setMinPINLength=True,
                pinUvAuthToken=True,
                makeCredUvNotRqd=True,
                alwaysUv=self.always_uv,
            )
        info: dict[int, Any] = {
            1: ["FIDO_2_0", "FIDO_2_1"] if p.ctap21 else ["FIDO_2_0"],
            2: list(p.extensions),
            3: p.aaguid,
            4: options,
            5: 1200,
            6: list(self.pin_protocols),
            7: 8,
            8: 128,
            9: ["usb"],
            10: [{"alg": -7, "type": "public-key"}],
            14: p.firmware_version,
            20: max(0, p.capacity - len(self.discoverable)),
        }
        if p.ctap21:
            info.update({12: self.pin.force_change, 13: self.pin.min_length, 16: p.max_rpids_for_min_pin})
        return info

    def require_touch(self, presence: Presence) -> None:
        """User presence: announce it with a keep-alive, then obey the touch switch."""
        self.touch_requests += 1
        if presence.on_keepalive:
            presence.on_keepalive(STATUS.UPNEEDED)
        if presence.event is not None and presence.event.is_set():
            raise CtapError(ERR.KEEPALIVE_CANCEL)
        if self.switches.touch is Touch.NOT_GIVEN:
            raise CtapError(ERR.USER_ACTION_TIMEOUT)
        if self.switches.touch is Touch.DENIED:
            raise CtapError(ERR.OPERATION_DENIED)

    def reset(self, presence: Presence) -> None:
        if self._clock() - self.powered_at > self.switches.reset_window_s:
            raise CtapError(self.switches.reset_late_error)
        self.require_touch(presence)
        self.credentials.clear()
        self.pin = PinState(retries=self.profile.max_pin_retries)
        self.always_uv = False
        self.token.regenerate()
        self.key_agreement = ec.generate_private_key(ec.SECP256R1())
        self.enumeration = None
        self.resets += 1

    def selection(self, presence: Presence) -> None:
        self.require_touch(presence)

    # -- helpers for the command modules ---------------------------------------------------

    def verify_token(
        self,
        version: object,
        pin_uv_param: bytes | None,
        message: bytes,
        permission: int,
        rp_id: str | None = None,
        *,
        unbound_only: bool = False,
    ) -> None:
        """Check a pinUvAuthParam made with the current token, its permission and its RP binding."""
        proto = protocol(version, self.pin_protocols)
        if not proto.verify(self.token.value, message, pin_uv_param):
            raise CtapError(ERR.PIN_AUTH_INVALID)
        if not self.token.permissions & permission:
            raise CtapError(ERR.PIN_AUTH_INVALID)
        if unbound_only and self.token.rp_id is not None:
            raise CtapError(ERR.PIN_AUTH_INVALID)
        if rp_id is not None:
            if self.token.rp_id is None:
                self.token.rp_id = rp_id
            elif self.token.rp_id != rp_id:
                raise CtapError(ERR.PIN_AUTH_INVALID)

    def new_credential_id(self) -> bytes:
        return os.urandom(48)

    def find(self, credential_id: bytes, rp_id: str | None = None) -> Credential | None:
        for cred in self.credentials:
            if cred.credential_id == credential_id and (rp_id is None or cred.rp_id == rp_id):
                return cred
        return None


Handler = Callable[[SoftAuthenticator, dict[int, Any], Presence], "dict[Any, Any] | None"]
_CTAP21_ONLY = (0x0A, 0x0D)
_COMMANDS: dict[int, Handler] = {
    0x01: make_credential.handle,
    0x02: get_assertion.handle,
    0x04: lambda key, _params, _presence: key.info(),
    0x06: client_pin.handle,
    0x07: lambda key, _params, presence: key.reset(presence),
    0x08: get_assertion.handle_next,
    0x0A: cred_mgmt.handle,
    0x0B: lambda key, _params, presence: key.selection(presence),
    0x0D: config_cmd.handle,
}
