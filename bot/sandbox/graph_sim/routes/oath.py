"""Beta: the hardware OATH token inventory and per-user assign/activate actions."""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, bad_request
from ..methods_json import device_json, method_json
from ..model import HardwareOathDevice, HardwareOathMethod
from ..odata import collection, entity, filtered
from ..router import Ctx, Reply, Router
from ..totp import decode_secret

_DEVICE_FILTER = {
    p.lower(): p
    for p in ("id", "serialNumber", "status", "manufacturer", "model", "displayName", "assignedTo/id")
}
_INVENTORY = "/directory/authenticationMethodDevices/hardwareOathDevices"
_USER_METHODS = "/users/{user}/authentication/hardwareOathMethods"


def _device_values(d: HardwareOathDevice) -> dict[str, object]:
    return {
        "id": d.id,
        "serialNumber": d.serial_number,
        "status": d.status.value,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "displayName": d.display_name,
        "assignedTo/id": d.assigned_to,
    }


def _device(ctx: Ctx) -> HardwareOathDevice:
    device = ctx.tenant.hardware_oath_devices.get(ctx.params["device"])
    if device is None:
        raise GraphError(
            404, "itemNotFound", f"Hardware OATH token with id '{ctx.params['device']}' was not found."
        )
    return device


def list_devices(ctx: Ctx) -> Reply:
    devices = list(ctx.tenant.hardware_oath_devices.values())
    found = filtered(
        ctx, devices, _DEVICE_FILTER, "hardwareOathTokenAuthenticationMethodDevice", _device_values
    )
    items = [device_json(ctx.tenant, d) for d in found]
    return collection(ctx, items, "directory/authenticationMethodDevices/hardwareOathDevices")


def get_device(ctx: Ctx) -> Reply:
    context = "directory/authenticationMethodDevices/hardwareOathDevices/$entity"
    return entity(ctx, device_json(ctx.tenant, _device(ctx)), context)


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{key} is required.")
    return value


def create_device(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    secret = _required_str(body, "secretKey")
    try:
        decode_secret(secret)
    except ValueError as exc:
        raise bad_request("secretKey must be a base32 encoded value.") from exc
    interval = body.get("timeIntervalInSeconds", 30)
    if isinstance(interval, str) and interval.isdigit():
        interval = int(interval)
    if interval not in (30, 60):
        raise bad_request("timeIntervalInSeconds must be 30 or 60.")
    serial = _required_str(body, "serialNumber")
    if ctx.tenant.device_by_serial(serial) is not None:
        raise bad_request(f"A hardware OATH token with serial number '{serial}' already exists.")
    assign = body.get("assignTo") if isinstance(body.get("assignTo"), dict) else None
    device_id = ctx.tenant.add_hardware_oath_device(
        serial,
        _required_str(body, "manufacturer"),
        _required_str(body, "model"),
        secret,
        int(interval),
        hash_function=str(body.get("hashFunction") or "hmacsha1"),
        display_name=body.get("displayName"),
    )
    if assign is not None:
        ctx.tenant.assign_device(str(assign.get("id")), device_id)
    device = ctx.tenant.hardware_oath_devices[device_id]
    return entity(
        ctx,
        device_json(ctx.tenant, device),
        "directory/authenticationMethodDevices/hardwareOathDevices/$entity",
        201,
    )


def delete_device(ctx: Ctx) -> Reply:
    device = _device(ctx)
    if device.assigned_to is not None:
        raise bad_request("The hardware OATH token must be unassigned before it can be deleted.")
    del ctx.tenant.hardware_oath_devices[device.id]
    return Reply(204)


def _device_ref(body: dict[str, Any]) -> str:
    device = body.get("device")
    if not isinstance(device, dict) or not isinstance(device.get("id"), str):
        raise bad_request("device with an id is required.")
    return str(device["id"])


def assign(ctx: Ctx) -> Reply:
    user = ctx.user()
    device = ctx.tenant.assign_device(user.id, _device_ref(ctx.json_object()))
    method = HardwareOathMethod(device.id, user.id, device)
    return entity(
        ctx,
        method_json(ctx.tenant, method),
        f"users('{user.id}')/authentication/hardwareOathMethods/$entity",
        201,
    )


def assign_and_activate(ctx: Ctx) -> Reply:
    user = ctx.user()
    body = ctx.json_object()
    device_id = _device_ref(body)
    device = ctx.tenant.hardware_oath_devices.get(device_id)
    if device is None:
        raise GraphError(404, "itemNotFound", f"Hardware OATH token with id '{device_id}' was not found.")
    ctx.tenant.assign_and_activate(user.id, device, body.get("verificationCode"), body.get("displayName"))
    return Reply(204)


def assign_and_activate_by_serial(ctx: Ctx) -> Reply:
    user = ctx.user()
    body = ctx.json_object()
    serial = _required_str(body, "serialNumber")
    device = ctx.tenant.device_by_serial(serial)
    if device is None:
        raise GraphError(
            404, "itemNotFound", f"Hardware OATH token with serial number '{serial}' was not found."
        )
    ctx.tenant.assign_and_activate(user.id, device, body.get("verificationCode"), body.get("displayName"))
    return Reply(204)


def activate(ctx: Ctx) -> Reply:
    user = ctx.user()
    body = ctx.json_object()
    ctx.tenant.activate_device(
        user.id, ctx.params["method"], body.get("verificationCode"), body.get("displayName")
    )
    return Reply(204)


def deactivate(ctx: Ctx) -> Reply:
    ctx.tenant.deactivate_device(ctx.user().id, ctx.params["method"])
    return Reply(204)


def register(router: Router) -> None:
    router.add("GET", _INVENTORY, list_devices, beta_only=True)
    router.add("POST", _INVENTORY, create_device, beta_only=True)
    router.add("GET", _INVENTORY + "/{device}", get_device, beta_only=True)
    router.add("DELETE", _INVENTORY + "/{device}", delete_device, beta_only=True)
    router.add("POST", _USER_METHODS, assign, beta_only=True)
    router.add("POST", _USER_METHODS + "/assignAndActivate", assign_and_activate, beta_only=True)
    router.add(
        "POST",
        _USER_METHODS + "/assignAndActivateBySerialNumber",
        assign_and_activate_by_serial,
        beta_only=True,
    )
    router.add("POST", _USER_METHODS + "/{method}/activate", activate, beta_only=True)
    router.add("POST", _USER_METHODS + "/{method}/deactivate", deactivate, beta_only=True)
