"""Hardware OATH token inventory (beta) and its assign/activate lifecycle, with real TOTP checks."""

from __future__ import annotations

import re
from datetime import datetime

from bot.clock import Clock

from .credentials import CredentialState
from .directory import new_id
from .errors import GraphError, bad_request, policy_refusal
from .model import AuthMethod, HardwareOathDevice, HardwareOathMethod, MethodKind, OathStatus
from .policy import in_scope
from .totp import decode_secret, matching_step, totp

_CODE = re.compile(r"^\d{6}$")


def _device_not_found(what: str) -> GraphError:
    return GraphError(404, "itemNotFound", f"Hardware OATH token {what} was not found.")


class OathState(CredentialState):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.hardware_oath_devices: dict[str, HardwareOathDevice] = {}

    def add_hardware_oath_device(
        self,
        serial: str,
        manufacturer: str,
        model: str,
        secret_key_base32: str,
        time_interval: int = 30,
        assigned_to: str | None = None,
        *,
        hash_function: str = "hmacsha1",
        display_name: str | None = None,
        id: str | None = None,
    ) -> str:
        decode_secret(secret_key_base32)  # fail early on a malformed secret
        if time_interval not in (30, 60):
            raise ValueError("time_interval must be 30 or 60 seconds")
        if self.device_by_serial(serial) is not None:
            raise ValueError(f"serial number {serial} already exists")
        device = HardwareOathDevice(
            id=id or new_id(),
            serial_number=serial,
            manufacturer=manufacturer,
            model=model,
            secret_key=secret_key_base32,
            created=self.clock.now(),
            time_interval=time_interval,
            hash_function=hash_function,
            display_name=display_name,
        )
        self.hardware_oath_devices[device.id] = device
        if assigned_to is not None:
            self._assign(device, assigned_to)
        return device.id

    def device_by_serial(self, serial: str) -> HardwareOathDevice | None:
        return next((d for d in self.hardware_oath_devices.values() if d.serial_number == serial), None)

    def totp_now(self, device_id_or_serial: str, at: datetime | None = None) -> str:
        """The code the token shows now (tests and the demo type it in, like a person would)."""
        device = self.hardware_oath_devices.get(device_id_or_serial) or self.device_by_serial(
            device_id_or_serial
        )
        if device is None:
            raise KeyError(device_id_or_serial)
        return totp(device.secret_key, at or self.clock.now(), device.time_interval, device.hash_function)

    def _hardware_methods(self, user_id: str) -> list[AuthMethod]:
        return [
            HardwareOathMethod(d.id, user_id, d)
            for d in self.hardware_oath_devices.values()
            if d.assigned_to == user_id
        ]

    def _has_strong_method(self, user_id: str) -> bool:
        return any(
            m.kind not in (MethodKind.PASSWORD, MethodKind.TAP, MethodKind.HARDWARE_OATH)
            or (isinstance(m, HardwareOathMethod) and m.device.status == OathStatus.ACTIVATED)
            for m in self.methods_of(user_id)
        )

    # -- Graph operations ----------------------------------------------------------------------------

    def assign_device(self, user_id: str, device_id: str) -> HardwareOathDevice:
        device = self.hardware_oath_devices.get(device_id)
        if device is None:
            raise _device_not_found(f"with id '{device_id}'")
        self._check_assignable(user_id, device)
        if device.assigned_to != user_id:
            self._assign(device, user_id)
        return device

    def activate_device(self, user_id: str, device_id: str, code: object, display_name: object) -> None:
        """Activate a token already assigned to the user; a wrong code marks it failedActivation."""
        device = self.hardware_oath_devices.get(device_id)
        if device is None or device.assigned_to != user_id:
            raise _device_not_found(f"with id '{device_id}'")
        if not self._code_matches(device, code):
            device.status = OathStatus.FAILED_ACTIVATION
            raise bad_request("The verification code is invalid.")
        self._activate(device, display_name)

    def assign_and_activate(
        self, user_id: str, device: HardwareOathDevice, code: object, display_name: object
    ) -> None:
        """Atomic: on a wrong code nothing is assigned."""
        self._check_assignable(user_id, device)
        if not self._code_matches(device, code):
            raise bad_request("The verification code is invalid.")
        if device.assigned_to != user_id:
            self._assign(device, user_id)
        self._activate(device, display_name)

    def deactivate_device(self, user_id: str, device_id: str) -> None:
        device = self._owned(user_id, device_id)
        device.status = OathStatus.ASSIGNED

    def unassign_device(self, user_id: str, device_id: str) -> None:
        device = self._owned(user_id, device_id)
        device.assigned_to = None
        device.assigned_at = None
        device.status = OathStatus.AVAILABLE

    # -- helpers -------------------------------------------------------------------------------------

    def _owned(self, user_id: str, device_id: str) -> HardwareOathDevice:
        device = self.hardware_oath_devices.get(device_id)
        if device is None or device.assigned_to != user_id:
            raise _device_not_found(f"with id '{device_id}'")
        return device

    def _check_assignable(self, user_id: str, device: HardwareOathDevice) -> None:
        setting = self.other_methods["HardwareOath"]
        groups = self.group_ids_of(user_id)
        if not in_scope(setting.state, setting.include_targets, setting.exclude_targets, groups):
            raise policy_refusal("HardwareOath")
        if device.assigned_to not in (None, user_id):
            raise bad_request("The hardware OATH token is already assigned to another user.")

    def _assign(self, device: HardwareOathDevice, user_id: str) -> None:
        if user_id not in self.users:
            raise KeyError(f"no user {user_id}")
        device.assigned_to = user_id
        device.assigned_at = self.clock.now()
        device.status = OathStatus.ASSIGNED

    def _activate(self, device: HardwareOathDevice, display_name: object) -> None:
        device.status = OathStatus.ACTIVATED
        device.last_used = self.clock.now()
        if isinstance(display_name, str) and display_name:
            device.display_name = display_name

    def _code_matches(self, device: HardwareOathDevice, code: object) -> bool:
        """RFC 6238 with one step of drift either way; a code (time step) is accepted only once."""
        if not isinstance(code, str) or not _CODE.match(code):
            raise bad_request("verificationCode must be the 6-digit code shown on the token.")
        step = matching_step(
            device.secret_key,
            code,
            self.clock.now(),
            interval=device.time_interval,
            hash_function=device.hash_function,
        )
        if step is None or (device.last_step is not None and step <= device.last_step):
            return False
        device.last_step = step
        return True
