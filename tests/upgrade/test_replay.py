"""The replay gate: today's workflow code must replay every history a supported release recorded.

A release's running rollouts are finished by the next release's workers: their histories were
written by the old code and are replayed by the new. Each supported release's set lives in
``tests/histories/<release>/`` (recorded by ``tests/upgrade/record_histories.py`` with the
release's own worker; docs/histories.md). Any history that no longer replays fails here, named by
release, file and workflow id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from meshfleet import __version__
from meshfleet.contract.payloads import CREATE_MESH_WORKFLOW
from tests.helpers.paths import REPO
from tests.upgrade.releases import GATED, IN_DEVELOPMENT, SUPPORTED, plays_development
from workflows.registry import ALL_WORKFLOWS

HISTORIES = REPO / "tests" / "histories"
INDEX = "index.json"

# The paths every release's set must cover, whatever else a later recorder adds.
REQUIRED_SCENARIOS = frozenset(
    {
        "created",
        "adopted",
        "created-after-hidden-500",
        "cluster-conflict",
        "name-conflict",
        "create-failed",
        "timeout",
        "retry-429",
        "retry-5xx",
        "lost-task",
        "waves",
        "halt-resume",
        "pause-resume",
        "cancel-update",
        "cancel-temporal",
        "continue-as-new",
        "target-pages",
        "mesh-busy",
    }
)
# The paths the version in development added, which no release has recorded yet.
REQUIRED_IN_DEVELOPMENT = frozenset(
    {
        "soak-verify",
        "verify-webhook",
        "approval-gate",
        "regions-sequential",
        "regions-parallel",
        "gates-continue-as-new",
        "rollback",
        "rollback-halt-resume",
        "rollback-continue-as-new",
    }
)


# Added to the development set after the last release was recorded: only that set holds them
# until the next release records its own.
REQUIRED_SINCE_LAST_RELEASE = frozenset(
    {
        "cancel-during-page-load",
        "converge",
        "converge-rollback",
        "drift-check",
        "upgrade",
        "upgrade-manual-finalize",
        "upgrade-rollback",
        "upgrade-halt",
        "upgrade-cancel",
    }
)


def required_scenarios(release: str) -> frozenset[str]:
    """The scenarios a set must hold: a release's whole list, or the development set's own."""
    if release == IN_DEVELOPMENT:
        return REQUIRED_IN_DEVELOPMENT | REQUIRED_SINCE_LAST_RELEASE
    if plays_development(release):
        return REQUIRED_SCENARIOS | REQUIRED_IN_DEVELOPMENT
    return REQUIRED_SCENARIOS


@dataclass(frozen=True)
class HistoryFile:
    """One recorded run, as the Temporal CLI wrote it."""

    release: str
    path: Path
    history: WorkflowHistory
    workflow_type: str

    @property
    def workflow_id(self) -> str:
        """The recorded workflow's id."""
        return self.history.workflow_id

    @property
    def run_id(self) -> str:
        """The recorded run's id."""
        return self.history.run_id

    def describe(self) -> str:
        """Release, file, workflow type, id and run, for failure messages."""
        return (
            f"release {self.release}: {self.path.name} ({self.workflow_type} "
            f"{self.workflow_id}, run {self.run_id})"
        )


def workflow_name(cls: type) -> str:
    """The name a workflow class is registered under."""
    name = workflow._Definition.must_from_class(cls).name
    assert name is not None, f"{cls.__name__} is a dynamic workflow"
    return name


def history_paths(release: str) -> list[Path]:
    """Every history file of a release's set, sorted."""
    return sorted(p for p in (HISTORIES / release).glob("*.json") if p.name != INDEX)


def load(release: str, path: Path) -> HistoryFile:
    """A history file, with the workflow id and type its first event names."""
    data: dict[str, Any] = json.loads(path.read_text())
    started = data["events"][0]["workflowExecutionStartedEventAttributes"]
    history = WorkflowHistory.from_json(started["workflowId"], data)
    return HistoryFile(release, path, history, started["workflowType"]["name"])


def load_index(release: str) -> dict[str, Any]:
    """The release's ``index.json``."""
    index: dict[str, Any] = json.loads((HISTORIES / release / INDEX).read_text())
    return index


async def replay(
    files: Sequence[HistoryFile], workflows: Sequence[type] = ALL_WORKFLOWS
) -> dict[Path, str]:
    """Replay every file against ``workflows``; what failed, by file, with its failure text."""

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for f in files:
            yield f.history

    replayer = Replayer(workflows=workflows, data_converter=pydantic_data_converter)
    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    by_run = {f.run_id: f for f in files}
    assert len(by_run) == len(files), "two files hold the same run"
    return {
        by_run[run_id].path: f"{by_run[run_id].describe()} does not replay: "
        f"{type(err).__name__}: {err}"
        for run_id, err in results.replay_failures.items()
    }


CASES = [
    pytest.param(release, path, id=f"{release}/{path.stem}")
    for release in GATED
    for path in history_paths(release)
]


@pytest.fixture(scope="module")
async def replayed() -> dict[Path, str]:
    """Every gated set, replayed once against today's workflows."""
    failures: dict[Path, str] = {}
    for release in GATED:
        failures |= await replay([load(release, path) for path in history_paths(release)])
    return failures


@pytest.mark.parametrize(("release", "path"), CASES)
def test_history_replays(release: str, path: Path, replayed: dict[Path, str]) -> None:
    assert path not in replayed, replayed[path]


@pytest.mark.parametrize("release", GATED)
def test_index_names_every_file_and_every_file_is_there(release: str) -> None:
    index = load_index(release)
    assert index["release"] == release
    entries = {entry["file"]: entry for entry in index["files"]}
    on_disk = {path.name for path in history_paths(release)}
    missing = sorted(set(entries) - on_disk)
    assert not missing, f"release {release}: in {INDEX} but not on disk: {missing}"
    unindexed = sorted(on_disk - set(entries))
    assert not unindexed, f"release {release}: not in {INDEX}: {unindexed}"
    for path in history_paths(release):
        recorded = load(release, path)
        entry = entries[path.name]
        assert (entry["workflow_type"], entry["workflow_id"], entry["run_id"]) == (
            recorded.workflow_type,
            recorded.workflow_id,
            recorded.run_id,
        ), f"release {release}: {path.name} is not what {INDEX} says"
        assert entry["scenario"] in index["scenarios"], path.name
        assert path.name.startswith(f"{entry['scenario']}--"), path.name
    scenarios_with_files = {entry["scenario"] for entry in entries.values()}
    empty = set(index["scenarios"]) - scenarios_with_files
    assert not empty, f"release {release}: scenarios without a history: {sorted(empty)}"


def test_every_workflow_has_a_recorded_history() -> None:
    # A workflow type that came after a release has its histories in the development set.
    types = {
        load(release, path).workflow_type for release in GATED for path in history_paths(release)
    }
    wanted = {workflow_name(cls) for cls in ALL_WORKFLOWS}
    assert wanted <= types, f"no recorded history of {sorted(wanted - types)}"


@pytest.mark.parametrize("release", GATED)
def test_set_covers_its_required_scenarios(release: str) -> None:
    scenarios = {entry["scenario"] for entry in load_index(release)["files"]}
    missing = required_scenarios(release) - scenarios
    assert not missing, f"release {release}: no history of scenarios {sorted(missing)}"


def test_the_development_set_is_of_the_version_main_builds() -> None:
    # A version bump must come with its set recorded again (`make histories RELEASE=<version>`).
    assert __version__ == IN_DEVELOPMENT
    assert load_index(IN_DEVELOPMENT)["release"] == __version__


# Outside the sandbox: the sandbox would import this test module again, and the gate is about
# the commands a workflow issues, which the sandbox does not change.
@workflow.defn(name=CREATE_MESH_WORKFLOW, sandboxed=False)
class TimerBeforePost:
    """``CreateMeshWorkflow`` changed carelessly: a timer before the POST, no ``patched``."""

    @workflow.run
    async def run(self, inp: dict[str, Any]) -> dict[str, Any]:
        """Sleep, then give up: replay must fail at the timer already."""
        await workflow.sleep(1)
        return inp


async def test_gate_catches_a_change_that_breaks_replay() -> None:
    release = SUPPORTED[-1]
    entry = next(
        e for e in load_index(release)["files"] if e["workflow_type"] == CREATE_MESH_WORKFLOW
    )
    recorded = load(release, HISTORIES / release / entry["file"])
    assert await replay([recorded]) == {}  # the unchanged workflow replays it

    failures = await replay([recorded], workflows=[TimerBeforePost])

    assert list(failures) == [recorded.path]
    message = failures[recorded.path]
    assert recorded.workflow_id in message
    assert f"release {release}: {recorded.path.name}" in message
    assert "NondeterminismError" in message, message
