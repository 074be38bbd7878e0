"""The tenant-wide circuit breaker (security.md IDV-5) counts every credential keydesk issues: a key
prepared at a desk weighs like a pass, so neither path can go around the other's limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox.company import Company
from bot.sandbox.stack import Stack

from .helpers import add_new_hire, confirmed_card, message_text, revealed, tap_posts, wait_audit, wait_channel
from .helpers import approve as approve_pass
from .test_desk_provisioning import approve, ask, fido2_posts, key_card, prepared
from .test_tap_abuse import refusal

ONE_AN_HOUR = pytest.mark.keydesk_settings(max_passes_per_hour=1)


@ONE_AN_HOUR
async def test_a_desk_key_counts_against_the_passes_of_the_hour(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await prepared(stack, company, tmp_path, "at-desk")  # Ada's key, approved by Alex
    bob = add_new_hire(stack, "U0BOB", "bob", "Bob Byte", company.grace)
    card = await confirmed_card(stack, company, bob)

    outcome = await approve_pass(stack.slack, company.sam.slack_id, card)

    assert "Issuance is paused" in outcome
    await refusal(stack, "tap.approve.refused", "limit")
    alert = await wait_channel(stack.slack, "circuit breaker")
    assert "1 passes and desk keys were issued in the last hour" in message_text(alert)
    assert tap_posts(stack.graph, bob.entra_id) == []


@ONE_AN_HOUR
async def test_a_pass_counts_against_the_desk_keys_of_the_hour(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    from .test_desk_provisioning import desk

    await revealed(stack, company)  # Ada's pass
    await desk(stack, company, tmp_path)
    bob = add_new_hire(stack, "U0BOB", "bob", "Bob Byte", company.grace)
    assert "a second approver must approve" in await ask(stack, company.sam, bob, "at-desk")
    card = await key_card(stack, bob.name)

    outcome = await approve(stack, company.alex, card)

    assert "Issuance is paused" in outcome
    await refusal(stack, "tap.approve.refused", "limit")
    await wait_channel(stack.slack, "circuit breaker")
    assert fido2_posts(stack, bob) == []


@ONE_AN_HOUR
async def test_a_desk_key_the_manager_stopped_still_counts(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    from .test_desk_notices import notice_of, press

    await prepared(stack, company, tmp_path, "at-desk")  # Ada's key, registered in Entra
    await press(stack, company.grace, await notice_of(stack, company))
    await wait_audit(stack, "desk.looks_wrong")  # the request is revoked now, the key was issued all the same
    bob = add_new_hire(stack, "U0BOB", "bob", "Bob Byte", company.grace)
    card = await confirmed_card(stack, company, bob)

    outcome = await approve_pass(stack.slack, company.sam.slack_id, card)

    assert "Issuance is paused" in outcome
    assert tap_posts(stack.graph, bob.entra_id) == []
