"""The key report an agent sends is read once, the same way for every inventory record."""

from __future__ import annotations

from bot.services.desk_inventory import KeyReport


def test_a_report_without_an_aaguid_files_nothing() -> None:
    assert KeyReport.of({"serial_number": "123", "model": "YubiKey 5"}) is None
    assert KeyReport.of({"aaguid": "   ", "serial_number": "123"}) is None


def test_the_fields_are_cleaned_and_the_fallbacks_used() -> None:
    key = KeyReport.of(
        {
            "aaguid": "ee882879-721c-4913-9775-3dfcce97072a",
            "serial": "0042",
            "product_name": "  YubiKey\u200b 5 NFC\x07 ",
            "firmware": "",
        }
    )
    assert key is not None
    assert key.aaguid == "ee882879-721c-4913-9775-3dfcce97072a"
    assert key.serial == "0042"  # the provisioning report names it `serial`
    assert key.model == "YubiKey 5 NFC"  # invisible and control characters gone, trimmed
    assert key.firmware is None


def test_serial_number_wins_over_serial_and_model_over_product_name() -> None:
    key = KeyReport.of(
        {"aaguid": "a", "serial_number": "1", "serial": "2", "model": "M", "product_name": "P"}
    )
    assert key == KeyReport(aaguid="a", serial="1", model="M", firmware=None)


def test_overlong_values_are_cut_to_what_the_columns_hold() -> None:
    key = KeyReport.of({"aaguid": "a" * 100, "serial_number": "9" * 500, "model": "m" * 500})
    assert key is not None
    assert len(key.aaguid) <= 36 and key.serial is not None and len(key.serial) <= 128
    assert key.model is not None and len(key.model) <= 200
