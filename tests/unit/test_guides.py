"""Registration guides: the shipped content, organisation overrides, and clear load-time errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.guides import (
    MAX_STEPS,
    PLACEHOLDERS,
    Device,
    Guide,
    GuideError,
    GuideLibrary,
    GuideMethod,
    GuideStep,
    OrgProfile,
    UnknownGuideError,
    template_names,
)

MINIMAL = """
id: badge
method: fido2
title: Badge key
summary: Register your badge.
estimated_minutes: 3
steps:
  - id: one
    title: One
    text: Do one.
  - id: two
    title: Two
    text: Do two.
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load_error(folder: Path) -> str:
    with pytest.raises(GuideError) as caught:
        GuideLibrary.load(folder)
    return str(caught.value)


def all_texts(guide: Guide) -> list[str]:
    texts = [guide.title, guide.summary]
    for step in guide.steps:
        texts += [t for t in (step.title, step.text, step.tip, step.expect) if t]
    return texts


_SHIPPED = GuideLibrary.load()


@pytest.fixture(scope="module")
def shipped() -> GuideLibrary:
    return GuideLibrary.load()


# --- the shipped guides -----------------------------------------------------------------------


def test_shipped_guides_load_with_fido2_as_the_default(shipped: GuideLibrary) -> None:
    assert [g.id for g in shipped.all()] == ["fido2", "hardware_oath", "authenticator"]
    assert shipped.default().id == "fido2"
    assert [g.id for g in shipped.all() if g.default] == ["fido2"]
    for method in GuideMethod:
        assert shipped.for_method(method).method is method
    assert shipped.for_method("authenticator").id == "authenticator"


def test_every_shipped_step_is_short_and_complete(shipped: GuideLibrary) -> None:
    for guide in shipped.all():
        assert 1 <= len(guide.steps) <= MAX_STEPS
        assert guide.estimated_minutes >= 1
        for step in guide.steps:
            assert step.title and step.text
            assert len(step.text) < 600, f"{guide.id}/{step.id} is too long for a DM step"
            assert re.fullmatch(r"[a-z0-9-]+", step.id)


def test_rendered_guides_have_no_placeholder_left(shipped: GuideLibrary) -> None:
    for guide in shipped.all():
        rendered = shipped.render(guide.id, {"tap_expiry": "10:45 (UTC)"})
        for text in all_texts(rendered):
            assert not re.search(r"\{\w+\}", text), text


def fido2_steps(library: GuideLibrary) -> list[GuideStep]:
    guide = library.render("fido2", {"pin_min_length": 8, "tap_expiry": "today at 10:45 (UTC)"})
    return list(guide.steps)


def index_of(steps: list[GuideStep], needle: str) -> int:
    for index, step in enumerate(steps):
        if needle.lower() in " ".join(t for t in (step.title, step.text, step.tip or "")).lower():
            return index
    raise AssertionError(f"no step mentions {needle!r}")


def test_fido2_guide_covers_every_required_topic_in_order(shipped: GuideLibrary) -> None:
    steps = fido2_steps(shipped)
    order = [
        "https://aka.ms/mysecurityinfo",  # sign in at the security-info page...
        "Temporary Access Pass",  # ...with the pass
        "Add sign-in method",
        "USB device",
        "where to save the passkey",
        "Plug your security key",
        "at least *8 characters*",  # the PIN, with the tenant's minimum length
        "touch the metal contact",
        "Give the key a name",
        "Sign out everywhere",
        "Sign in with a security key",
        "/lostkey",
    ]
    positions = [index_of(steps, needle) for needle in order]
    assert positions == sorted(positions), dict(zip(order, positions, strict=True))


def test_fido2_guide_details_that_matter_to_the_user(shipped: GuideLibrary) -> None:
    steps = {s.id: s for s in fido2_steps(shipped)}
    assert "10:45 (UTC)" in (steps["sign-in"].tip or "")
    assert "not even the helpdesk" in (steps["create-pin"].tip or "")
    assert "Face, fingerprint, PIN or security key" in steps["test-sign-in"].text
    assert "PIN" in steps["test-sign-in"].text and "touch the key" in steps["test-sign-in"].text
    assert "YubiKey 5 NFC, blue keyring" in steps["name-key"].text
    assert steps["insert-key"].device is Device.KEY
    assert "Security key" in steps["save-on-key"].text
    assert "the IT helpdesk" in steps["keep-it-safe"].text


def test_hardware_token_guide(shipped: GuideLibrary) -> None:
    guide = shipped.render("hardware_oath", {})
    text = " ".join(all_texts(guide))
    assert guide.steps[0].id == "find-serial" and "back" in guide.steps[0].text
    for needle in (
        "Hardware token",
        "serial number",
        "6-digit code",
        "before the code changes",
        "clock",
        "*Enter my token*",
    ):
        assert needle in text, needle


def test_authenticator_guide_says_which_device_at_every_step(shipped: GuideLibrary) -> None:
    guide = shipped.render("authenticator", {})
    assert all(step.device is not None for step in guide.steps)
    devices = {s.id: s.device for s in guide.steps}
    assert devices["install-app"] is Device.PHONE
    assert devices["add-method"] is Device.COMPUTER
    assert devices["add-account"] is Device.PHONE and "Work or school account" in guide.steps[3].text
    assert devices["scan-code"] is Device.PHONE
    assert devices["approve-test"] is Device.PHONE and "*Approve*" in guide.steps[6].text
    assert "https://aka.ms/mysecurityinfo" in guide.steps[1].text
    assert "notifications" in " ".join(all_texts(guide))


def test_unknown_guide_and_method(shipped: GuideLibrary) -> None:
    with pytest.raises(
        UnknownGuideError, match="no guide 'sms' \\(known: fido2, hardware_oath, authenticator\\)"
    ):
        shipped.get("sms")
    with pytest.raises(UnknownGuideError, match="no guide for method 'sms'"):
        shipped.for_method("sms")


# --- rendering ------------------------------------------------------------------------------


def test_render_uses_org_profile_then_per_user_context() -> None:
    org = OrgProfile(
        org_name="Contoso",
        support_contact="#it-help",
        sign_in_url="https://contoso.example/security",
        key_models=("YubiKey 5 NFC", "YubiKey 5C NFC"),
        pin_min_length=6,
    )
    library = GuideLibrary.load(org=org)
    guide = library.render("fido2", {})
    steps = {s.id: s for s in guide.steps}
    assert "https://contoso.example/security" in steps["sign-in"].text
    assert "YubiKey 5 NFC or YubiKey 5C NFC" in steps["insert-key"].text
    assert "at least *6 characters*" in steps["create-pin"].text
    assert "the expiry time shown when you reveal it" in (steps["sign-in"].tip or "")
    assert "#it-help" in steps["keep-it-safe"].text
    per_user = library.render("fido2", {"pin_min_length": 8})
    assert "at least *8 characters*" in per_user.steps[5].text
    assert library.get("fido2").steps[5].text.count("{pin_min_length}") == 1  # templates stay templates


def test_render_escapes_per_user_values_for_slack(shipped: GuideLibrary) -> None:
    guide = shipped.render("fido2", {"tap_expiry": "<!channel> & 10:45"})
    assert "&lt;!channel&gt; &amp; 10:45" in (guide.steps[0].tip or "")
    assert "<!channel>" not in (guide.steps[0].tip or "")


def test_values_are_inserted_as_text_never_evaluated(shipped: GuideLibrary) -> None:
    tip = shipped.render("fido2", {"tap_expiry": "{org_name.__class__} {sign_in_url}"}).steps[0].tip or ""
    assert "{org_name.__class__} {sign_in_url}" in tip


def test_render_refuses_unknown_context_keys_and_oversized_values(shipped: GuideLibrary) -> None:
    with pytest.raises(GuideError, match="render context has unknown placeholder 'tap'"):
        shipped.render("fido2", {"tap": "secret"})
    too_long = r"guide 'fido2', step 1 'sign-in': 'tip' is 3\d{3} characters after rendering"
    with pytest.raises(GuideError, match=too_long):
        shipped.render("fido2", {"tap_expiry": "x" * 3000})


@settings(max_examples=60, deadline=None)
@given(
    expiry=st.text(max_size=80),
    pin=st.integers(min_value=4, max_value=63),
    guide_id=st.sampled_from(["fido2", "hardware_oath", "authenticator"]),
)
def test_render_never_fails_for_reasonable_values_and_never_evaluates(
    expiry: str, pin: int, guide_id: str
) -> None:
    library = _SHIPPED
    guide = library.render(guide_id, {"tap_expiry": expiry, "pin_min_length": pin})
    assert len(guide.steps) == len(library.get(guide_id).steps)
    if guide_id == "fido2":
        assert f"at least *{pin} characters*" in guide.steps[5].text


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{sign_in_url.__class__}", "contains the placeholder {sign_in_url.__class__}, which is not allowed"),
        ("{x.__class__}", "contains the placeholder {x.__class__}, which is not allowed: use a plain name"),
        ("{org_name[0]}", "contains the placeholder {org_name[0]}, which is not allowed"),
        ("{0}", "contains the placeholder {0}, which is not allowed"),
        ("{}", "contains the placeholder {}, which is not allowed"),
        (
            "{pin_min_length:>10}",
            "{pin_min_length:>10}, which is not allowed: write it as {pin_min_length}",
        ),
        ("{org_name!r}", "contains the placeholder {org_name!r}, which is not allowed"),
        ("{favourite_colour}", "contains unknown placeholder {favourite_colour} (known: {key_models}, "),
        ("a } b", "has a '{' or '}' that is not part of a placeholder"),
        ("{org_name", "has a '{' or '}' that is not part of a placeholder"),
    ],
)
def test_only_plain_known_placeholders_are_accepted(template: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        template_names(template)
    assert problem in str(caught.value)


def test_literal_braces_are_allowed(tmp_path: Path) -> None:
    write(tmp_path, "braces.yaml", MINIMAL.replace("Do one.", "Type {{exactly}} this at {sign_in_url}."))
    library = GuideLibrary.load(tmp_path)
    assert (
        library.render("badge", {}).steps[0].text == "Type {exactly} this at https://aka.ms/mysecurityinfo."
    )
    assert template_names("{sign_in_url} {{x}} {tap_expiry}") == ["sign_in_url", "tap_expiry"]


def test_unknown_placeholder_fails_at_load_not_at_render(tmp_path: Path) -> None:
    write(tmp_path, "colour.yaml", MINIMAL.replace("Do two.", "Wear {favourite_colour}."))
    message = load_error(tmp_path)
    assert message.startswith(
        f"{tmp_path / 'colour.yaml'}, step 2 'two': 'text' contains unknown placeholder"
    )
    assert "{favourite_colour}" in message and "{sign_in_url}" in message  # lists the known ones
    bad = Guide("x", GuideMethod.FIDO2, "X", "X", True, 1, (GuideStep("a", "A", "{nope}"),))
    with pytest.raises(GuideError, match="unknown placeholder"):
        GuideLibrary([bad])  # a library built in memory is checked too


# --- organisation folder -------------------------------------------------------------------


def test_org_yaml_sets_the_profile(tmp_path: Path) -> None:
    write(
        tmp_path,
        "org.yaml",
        """
        org_name: Fabrikam
        support_contact: the Service Desk (ext. 4357)
        sign_in_url: https://mysignins.example/security-info
        key_models: [Token2 PIN+, YubiKey 5 NFC, Feitian ePass]
        pin_min_length: 6
    """,
    )
    library = GuideLibrary.load(
        tmp_path, org=OrgProfile(org_name="from settings", support_contact="settings")
    )
    assert library.org == OrgProfile(
        "Fabrikam",
        "the Service Desk (ext. 4357)",
        "https://mysignins.example/security-info",
        ("Token2 PIN+", "YubiKey 5 NFC", "Feitian ePass"),
        6,
    )
    steps = {s.id: s for s in library.render("fido2", {}).steps}
    assert "Token2 PIN+, YubiKey 5 NFC or Feitian ePass" in steps["insert-key"].text
    assert "at least *6 characters*" in steps["create-pin"].text
    assert "Just ask the Service Desk (ext. 4357)." in steps["keep-it-safe"].text


def test_org_yaml_keeps_what_it_does_not_mention(tmp_path: Path) -> None:
    write(tmp_path, "org.yaml", "org_name: Fabrikam\n")
    library = GuideLibrary.load(tmp_path, org=OrgProfile(support_contact="#help", pin_min_length=5))
    assert (library.org.org_name, library.org.support_contact, library.org.pin_min_length) == (
        "Fabrikam",
        "#help",
        5,
    )


def test_a_file_with_a_shipped_id_replaces_that_guide(tmp_path: Path) -> None:
    write(
        tmp_path,
        "our-fido2.yaml",
        MINIMAL.replace("id: badge", "id: fido2").replace(
            "estimated_minutes: 3", "estimated_minutes: 3\ndefault: true"
        ),
    )
    library = GuideLibrary.load(tmp_path)
    fido2 = library.get("fido2")
    assert [s.id for s in fido2.steps] == ["one", "two"] and fido2.title == "Badge key"
    assert library.default().id == "fido2"
    assert [g.id for g in library.all()] == ["fido2", "hardware_oath", "authenticator"]


def test_a_new_guide_is_added_after_the_shipped_ones(tmp_path: Path) -> None:
    write(tmp_path, "badge.yaml", MINIMAL)
    library = GuideLibrary.load(tmp_path)
    assert [g.id for g in library.all()] == ["fido2", "hardware_oath", "authenticator", "badge"]
    assert library.for_method("fido2").id == "fido2"  # the default wins over a second fido2 guide


def test_an_org_default_replaces_the_shipped_default(tmp_path: Path) -> None:
    write(tmp_path, "badge.yaml", MINIMAL + "default: true\n")
    library = GuideLibrary.load(tmp_path)
    assert library.default().id == "badge"
    assert [g.id for g in library.all() if g.default] == ["badge"]
    assert library.all()[0].id == "badge"
    assert library.for_method("fido2").id == "badge"


def test_extends_places_extra_steps_after_before_and_at_the_end(tmp_path: Path) -> None:
    write(
        tmp_path,
        "fido2-extra.yaml",
        """
        extends: fido2
        estimated_minutes: 15
        extra_steps:
          - id: collect-key
            before: sign-in
            title: Collect your key
            text: Pick up your {key_models} from the desk on floor 2.
            device: key
          - id: check-model
            after: insert-key
            title: Check the model
            text: It should say YubiKey on it.
          - id: check-light
            after: insert-key
            title: Check the light
            text: The light should be on.
          - id: report
            title: Tell us
            text: Tell {support_contact} you're done.
    """,
    )
    library = GuideLibrary.load(tmp_path)
    fido2 = library.get("fido2")
    ids = [s.id for s in fido2.steps]
    assert ids[0] == "collect-key"
    assert ids[ids.index("insert-key") + 1 : ids.index("insert-key") + 4] == [
        "check-model",
        "check-light",
        "create-pin",
    ]
    assert ids[-2:] == ["keep-it-safe", "report"]
    assert len(ids) == 15 and fido2.estimated_minutes == 15 and fido2.default
    assert fido2.steps[0].device is Device.KEY
    assert library.render("fido2", {}).steps[0].text == "Pick up your security key from the desk on floor 2."


def test_extends_with_a_new_id_makes_a_separate_guide(tmp_path: Path) -> None:
    write(
        tmp_path,
        "desk.yaml",
        """
        extends: fido2
        id: fido2-desk
        title: Set up the key the desk gave you
        extra_steps:
          - id: return-form
            title: Sign the form
            text: Sign the hand-over form.
    """,
    )
    library = GuideLibrary.load(tmp_path)
    assert library.get("fido2-desk").steps[-1].id == "return-form"
    assert library.get("fido2-desk").title == "Set up the key the desk gave you"
    assert library.get("fido2").steps[-1].id == "keep-it-safe"
    assert library.default().id == "fido2"


def test_extends_can_target_a_guide_the_org_added(tmp_path: Path) -> None:
    write(tmp_path, "a-badge.yaml", MINIMAL)
    write(
        tmp_path,
        "a-badge-more.yaml",
        """
        extends: badge
        extra_steps:
          - {id: one-and-a-half, after: one, title: Half, text: Half way.}
    """,
    )
    assert [s.id for s in GuideLibrary.load(tmp_path).get("badge").steps] == ["one", "one-and-a-half", "two"]


# --- clear errors ----------------------------------------------------------------------------


def test_missing_field_names_the_file_and_the_step(tmp_path: Path) -> None:
    write(tmp_path, "badge.yaml", MINIMAL.replace("    text: Do two.\n", ""))
    assert load_error(tmp_path) == f"{tmp_path / 'badge.yaml'}, step 2 'two': missing field 'text'"


def test_missing_guide_field(tmp_path: Path) -> None:
    write(tmp_path, "badge.yaml", MINIMAL.replace("summary: Register your badge.\n", ""))
    assert load_error(tmp_path) == f"{tmp_path / 'badge.yaml'}: missing field 'summary'"


def test_duplicate_step_id(tmp_path: Path) -> None:
    write(tmp_path, "badge.yaml", MINIMAL.replace("id: two", "id: one"))
    assert load_error(tmp_path) == (
        f"{tmp_path / 'badge.yaml'}, step 2 'one': duplicate step id 'one' (step ids must be unique)"
    )


def test_unknown_after_target_lists_the_steps(tmp_path: Path) -> None:
    write(
        tmp_path,
        "extra.yaml",
        """
        extends: hardware_oath
        extra_steps:
          - {id: call-us, after: enter-pin, title: Call us, text: Call us.}
    """,
    )
    assert load_error(tmp_path) == (
        f"{tmp_path / 'extra.yaml'}, extra step 1 'call-us': 'after: enter-pin' is not a step of guide "
        "'hardware_oath' (its steps: find-serial, sign-in, add-method, enter-serial, name-token, enter-code, "
        "keep-it-safe)"
    )


def test_after_and_before_together(tmp_path: Path) -> None:
    write(
        tmp_path,
        "extra.yaml",
        """
        extends: fido2
        extra_steps:
          - {id: x, after: sign-in, before: sign-out, title: X, text: X.}
    """,
    )
    assert load_error(tmp_path).endswith("extra step 1 'x': give 'after' or 'before', not both")


def test_extra_step_reusing_an_existing_id(tmp_path: Path) -> None:
    write(
        tmp_path,
        "extra.yaml",
        """
        extends: fido2
        extra_steps:
          - {id: touch-key, title: X, text: X.}
    """,
    )
    assert load_error(tmp_path).endswith(
        "extra step 1 'touch-key': guide 'fido2' already has a step 'touch-key' (step ids must be unique)"
    )


def test_extends_an_unknown_guide(tmp_path: Path) -> None:
    write(tmp_path, "extra.yaml", "extends: fido3\nextra_steps: [{id: x, title: X, text: X.}]\n")
    assert load_error(tmp_path) == (
        f"{tmp_path / 'extra.yaml'}: 'extends: fido3' names no guide "
        "(known guides: fido2, hardware_oath, authenticator)"
    )


def test_text_over_the_slack_section_limit_after_filling_in(tmp_path: Path) -> None:
    write(tmp_path, "badge.yaml", MINIMAL.replace("Do two.", "a" * 2950 + " {org_name}"))
    assert load_error(tmp_path) == (
        f"{tmp_path / 'badge.yaml'}, step 2 'two': 'text' would be 3051 characters with its placeholders "
        "filled in (each counted as at least 100); Slack shows at most 3000"
    )


def test_a_long_org_value_counts_in_full(tmp_path: Path) -> None:
    write(tmp_path, "org.yaml", f"support_contact: {'s' * 200}\n")
    write(tmp_path, "badge.yaml", MINIMAL.replace("Do two.", "a" * 2850 + " {support_contact}"))
    assert "step 2 'two': 'text' would be 3051 characters" in load_error(tmp_path)


def test_more_than_25_steps(tmp_path: Path) -> None:
    steps = "".join(f"  - {{id: s{i}, title: S, text: Do {i}.}}\n" for i in range(26))
    write(tmp_path, "long.yaml", MINIMAL.split("steps:")[0] + "steps:\n" + steps)
    assert load_error(tmp_path) == f"{tmp_path / 'long.yaml'}: has 26 steps; a guide may have at most 25"


def test_extending_past_25_steps(tmp_path: Path) -> None:
    extra = "".join(f"  - {{id: x{i}, title: X, text: X.}}\n" for i in range(15))
    write(tmp_path, "extra.yaml", "extends: fido2\nextra_steps:\n" + extra)
    assert load_error(tmp_path) == f"{tmp_path / 'extra.yaml'}: has 26 steps; a guide may have at most 25"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "broken.yaml", MINIMAL.replace("title: One", "title: One: and a colon"))
    assert load_error(tmp_path).startswith(f"{tmp_path / 'broken.yaml'}: YAML syntax error at line 8, column")


def test_a_key_written_twice_is_an_error_not_silently_the_last(tmp_path: Path) -> None:
    write(
        tmp_path, "twice.yaml", MINIMAL.replace("    text: Do one.", "    text: Do one.\n    text: Or this.")
    )
    assert load_error(tmp_path) == (
        f"{tmp_path / 'twice.yaml'}: YAML syntax error at line 10, column 5: the key 'text' appears twice"
    )


def test_a_typo_in_a_field_name(tmp_path: Path) -> None:
    write(tmp_path, "typo.yaml", MINIMAL.replace("    text: Do one.", "    text: Do one.\n    tipp: psst"))
    assert load_error(tmp_path) == (
        f"{tmp_path / 'typo.yaml'}, step 1 'one': unknown field 'tipp' "
        "(allowed: device, expect, id, text, tip, title)"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("    text: Do one.", "    text: Do one.\n    device: tablet"),
            "step 1 'one': 'device' must be one of: computer, phone, key",
        ),
        (("method: fido2", "method: sms"), "'method' must be one of: fido2, hardware_oath, authenticator"),
        (("method: fido2\n", ""), "missing field 'method' (one of: fido2, hardware_oath, authenticator)"),
        (
            ("estimated_minutes: 3", "estimated_minutes: soon"),
            "'estimated_minutes' must be a whole number from 1",
        ),
        (("estimated_minutes: 3\n", ""), "missing field 'estimated_minutes'"),
        (
            ("id: badge", "id: Badge Guide"),
            "'id' 'Badge Guide' must be lowercase letters, digits, '-' or '_'",
        ),
        (("    title: One", "    title: ''"), "step 1 'one': 'title' must be non-empty text"),
        (("    text: Do one.", "    text: yes"), "step 1 'one': 'text' must be non-empty text"),
        (
            ("summary: Register your badge.", "summary: Register your badge.\ndefault: maybe"),
            "'default' must be true or false",
        ),
    ],
)
def test_field_errors(tmp_path: Path, change: tuple[str, str], problem: str) -> None:
    write(tmp_path, "badge.yaml", MINIMAL.replace(*change))
    message = load_error(tmp_path)
    assert message.startswith(str(tmp_path / "badge.yaml")) and problem in message


def test_step_that_is_not_a_mapping(tmp_path: Path) -> None:
    write(
        tmp_path,
        "badge.yaml",
        MINIMAL.replace("  - id: two\n    title: Two\n    text: Do two.", "  - Do two."),
    )
    assert (
        load_error(tmp_path)
        == f"{tmp_path / 'badge.yaml'}, step 2: a step must be a mapping of 'name: value' lines"
    )


def test_empty_guide_file(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "# nothing yet\n")
    assert load_error(tmp_path).startswith(f"{tmp_path / 'empty.yaml'}: is empty; a guide needs id, method")


def test_the_same_id_in_two_org_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "b.yaml", MINIMAL)
    assert (
        load_error(tmp_path)
        == f"{tmp_path / 'b.yaml'}: guide 'badge' is already defined in {tmp_path / 'a.yaml'}"
    )


def test_two_org_defaults(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MINIMAL + "default: true\n")
    write(tmp_path, "b.yaml", MINIMAL.replace("id: badge", "id: card") + "default: true\n")
    assert load_error(tmp_path) == (
        f"{tmp_path}: guides 'badge' ({tmp_path / 'a.yaml'}) and 'card' ({tmp_path / 'b.yaml'}) are both "
        "marked default; mark only one"
    )


def test_replacing_the_default_guide_without_a_default(tmp_path: Path) -> None:
    write(tmp_path, "fido2.yaml", MINIMAL.replace("id: badge", "id: fido2"))
    assert load_error(tmp_path) == (
        f"{tmp_path}: no guide is marked 'default: true'; mark exactly one (the guide new users start with)"
    )


@pytest.mark.parametrize(
    ("org_yaml", "problem"),
    [
        (
            "org_nmae: Contoso\n",
            "unknown field 'org_nmae' (allowed: key_models, org_name, pin_min_length, "
            "sign_in_url, support_contact)",
        ),
        ("pin_min_length: 3\n", "'pin_min_length' must be a whole number from 4 to 63"),
        (
            "sign_in_url: aka.ms/mysecurityinfo\n",
            "'sign_in_url' must be a web address starting with https://, not 'aka.ms/mysecurityinfo'",
        ),
        ("key_models: YubiKey\n", "'key_models' must be a list of key model names"),
        ("- just a list\n", "org.yaml must be a mapping of 'name: value' lines"),
    ],
)
def test_org_yaml_errors(tmp_path: Path, org_yaml: str, problem: str) -> None:
    write(tmp_path, "org.yaml", org_yaml)
    message = load_error(tmp_path)
    assert message.startswith(f"{tmp_path / 'org.yaml'}: ") and problem in message


def test_missing_guides_folder(tmp_path: Path) -> None:
    assert (
        load_error(tmp_path / "nope")
        == f"{tmp_path / 'nope'}: is not a folder (the guides folder must hold guide YAML files)"
    )


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(MINIMAL.replace("Do one.", "Caf\xe9.").encode("latin-1"))
    assert load_error(tmp_path) == f"{tmp_path / 'latin1.yaml'}: is not UTF-8 text"


def test_other_files_in_the_folder_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "# our guides\n")
    write(tmp_path, ".#badge.yaml", "not: [valid")  # an editor's lock file
    assert len(GuideLibrary.load(tmp_path).all()) == 3


def test_every_placeholder_is_documented_in_the_enum() -> None:
    assert {
        "sign_in_url",
        "support_contact",
        "org_name",
        "pin_min_length",
        "key_models",
        "tap_expiry",
    } == PLACEHOLDERS
