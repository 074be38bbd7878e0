"""The agent's job registry: kind -> handler, built on the offline key operations.

Provisioning plugs in later by adding a handler for `provision` to the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.keys.devices import HostFacts, KeySource, OpenKey
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.inspect import KeyReport, inspect_key
from agent.keys.metadata import ModelCatalog
from agent.keys.reset import ResetPrompts, ResetTiming, reset_key
from agent.keys.timing import Timer
from agent.link import Job, JobFailed, JobHandler

Describe = Callable[[KeyReport], dict[str, Any]]


def inspect_handler(source: KeySource, catalog: ModelCatalog, describe: Describe) -> JobHandler:
    def handle(job: Job) -> dict[str, Any]:
        reports = []
        try:
            for descriptor in source.scan():
                key = OpenKey(descriptor, source.open(descriptor))
                try:
                    reports.append(describe(inspect_key(key, catalog=catalog)))
                finally:
                    key.close()
        except KeyOperationError as exc:
            raise JobFailed(exc.sentence) from exc
        return {"keys": reports}

    return handle


def reset_handler(
    source: KeySource, prompts: ResetPrompts, timer: Timer, facts: Callable[[], HostFacts | None]
) -> JobHandler:
    def handle(job: Job) -> dict[str, Any]:
        try:
            if not source.scan():
                raise KeyOperationError(Problem.NO_KEY)
            outcome = reset_key(source, prompts, timer=timer, timing=ResetTiming(), facts=facts())
        except KeyOperationError as exc:
            raise JobFailed(exc.sentence) from exc
        return {"reset": True, "seconds_after_insert": round(outcome.seconds_after_insert, 2)}

    return handle


def registry(
    source: KeySource,
    catalog: ModelCatalog,
    describe: Describe,
    prompts: ResetPrompts,
    timer: Timer,
    facts: Callable[[], HostFacts | None],
) -> dict[str, JobHandler]:
    return {
        "inspect": inspect_handler(source, catalog, describe),
        "reset": reset_handler(source, prompts, timer, facts),
    }
