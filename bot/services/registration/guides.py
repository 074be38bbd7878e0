"""The guide library (loaded once per settings) and the title of the step a wizard is on."""

from __future__ import annotations

from bot.domain import wizard
from bot.domain.guides import GuideLibrary, OrgProfile, UnknownGuideError
from bot.domain.wizard import WizardPhase
from bot.services.runtime import Runtime
from bot.store.models.wizard import Wizard
from bot.store.wizard_repo import state_of

_LIBRARIES: dict[tuple[str, str, str], GuideLibrary] = {}


def library(rt: Runtime) -> GuideLibrary:
    """The guides, loaded once per settings (prefers `rt.guides` when build_app put one there)."""
    attached = getattr(rt, "guides", None)
    if isinstance(attached, GuideLibrary):
        return attached
    s = rt.settings
    key = (str(s.guides_dir or ""), s.sign_in_url, s.support_contact)
    if key not in _LIBRARIES:
        org = OrgProfile(sign_in_url=s.sign_in_url, support_contact=s.support_contact)
        _LIBRARIES[key] = GuideLibrary.load(s.guides_dir, org=org)
    return _LIBRARIES[key]


def step_title(rt: Runtime, row: Wizard) -> str | None:
    state = state_of(row)
    if state.phase is not WizardPhase.IN_STEP:
        return None
    try:
        guide = library(rt).get(row.guide_id)
    except UnknownGuideError:
        return None
    step = wizard.current_step(state, guide)
    return step.title if step else None
