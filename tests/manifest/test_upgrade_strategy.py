"""``strategy.upgrade``: how a rollout finishes the meshes it upgrades, read into the payload,
refused with its path, in the schema, and kept out of the derived id while it is left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from meshfleet.manifest.document import manifest_schema
from meshfleet.manifest.load import load_manifest, validate_document
from meshfleet.models import RolloutStrategy, UpgradeStrategy
from tests.helpers.manifests import manifest, problems_of, target
from tests.helpers.paths import EXAMPLE_MANIFEST, REPO

ALLOWED = "must be after_rollout or manual"


def with_upgrade(upgrade: Any) -> dict[str, Any]:
    """A valid manifest document whose strategy also holds ``upgrade``."""
    doc = manifest()
    doc["strategy"]["upgrade"] = upgrade
    return doc


# --- good ------------------------------------------------------------------------------------


def test_without_the_key_upgraded_meshes_are_finalized_after_the_rollout() -> None:
    assert validate_document(manifest()).strategy.upgrade == UpgradeStrategy()
    assert validate_document(manifest()).strategy.upgrade.finalize == "after_rollout"


@pytest.mark.parametrize(
    ("upgrade", "finalize"),
    [
        ({"finalize": "manual"}, "manual"),
        ({"finalize": "after_rollout"}, "after_rollout"),
        ({}, "after_rollout"),
        # `upgrade:` with the keys under it commented out.
        (None, "after_rollout"),
    ],
)
def test_finalize_is_read(upgrade: Any, finalize: str) -> None:
    assert validate_document(with_upgrade(upgrade)).strategy.upgrade.finalize == finalize


def test_manual_finalize_reaches_the_rollout_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("# the fleet\n" + json.dumps(with_upgrade({"finalize": "manual"})))
    strategy = load_manifest(str(path)).strategy
    assert isinstance(strategy, RolloutStrategy)
    assert type(strategy.upgrade) is UpgradeStrategy
    assert strategy.upgrade.finalize == "manual"


# --- bad: every problem with its path ----------------------------------------------------------


@pytest.mark.parametrize(
    ("finalize", "problem"),
    [
        ("Manual", f"{ALLOWED}, not 'Manual' (did you mean 'manual'?)"),
        ("after-rollout", f"{ALLOWED}, not 'after-rollout' (did you mean 'after_rollout'?)"),
        ("afterrollout", f"{ALLOWED}, not 'afterrollout' (did you mean 'after_rollout'?)"),
        ("never", f"{ALLOWED}, not 'never'"),
        (True, f"{ALLOWED}, not true/false"),
        (1, f"{ALLOWED}, not a number"),
        (None, f"{ALLOWED}, not null"),
    ],
)
def test_a_bad_finalize_names_the_key_and_the_modes(finalize: Any, problem: str) -> None:
    assert problems_of(with_upgrade({"finalize": finalize})) == [
        f"strategy.upgrade.finalize: {problem}"
    ]


@pytest.mark.parametrize(
    ("upgrade", "problem"),
    [
        (
            {"finalise": "manual"},
            "strategy.upgrade.finalise: unknown field (did you mean 'finalize'?)",
        ),
        ({"finalize": "manual", "soak": "1h"}, "strategy.upgrade.soak: unknown field"),
        ("manual", "strategy.upgrade: must be a mapping like {finalize: manual}, not a string"),
        (["manual"], "strategy.upgrade: must be a mapping like {finalize: manual}, not a list"),
    ],
)
def test_a_bad_upgrade_is_named(upgrade: Any, problem: str) -> None:
    assert problems_of(with_upgrade(upgrade)) == [problem]


def test_a_misspelt_strategy_key_is_pointed_at_upgrade() -> None:
    doc = manifest()
    doc["strategy"]["upgrades"] = {"finalize": "manual"}
    assert problems_of(doc) == ["strategy.upgrades: unknown field (did you mean 'upgrade'?)"]


def test_an_upgrade_task_is_never_read_from_a_target_or_the_defaults() -> None:
    # What a finalize takes from the rollout's records (the task, what the mesh ran before).
    task = {"uid": "u-1", "task_id": "t-1", "version_before": "1.15.7-r3", "version": "1.18.7-r5"}
    doc = manifest(target(0, upgrade=task), target(1))
    doc["defaults"]["upgrade"] = task
    assert problems_of(doc) == [
        "defaults.upgrade: unknown field",
        "targets[0].upgrade: unknown field",
    ]


# --- the derived rollout id ------------------------------------------------------------------


def test_the_example_fleet_keeps_the_id_earlier_releases_derived_for_it() -> None:
    # The example sets no strategy.upgrade: adding the key changes no existing rollout's id.
    assert load_manifest(str(EXAMPLE_MANIFEST)).rollout_id == "fleet-f2aea3f83815"


def test_the_id_changes_only_when_finalize_leaves_its_default() -> None:
    left_out = validate_document(manifest()).rollout_id
    assert validate_document(with_upgrade(None)).rollout_id == left_out
    assert validate_document(with_upgrade({})).rollout_id == left_out
    assert validate_document(with_upgrade({"finalize": "after_rollout"})).rollout_id == left_out
    # Waiting for `meshfleet finalize` is another rollout.
    assert validate_document(with_upgrade({"finalize": "manual"})).rollout_id != left_out


# --- the schema ------------------------------------------------------------------------------


def test_the_schema_describes_the_key_and_refuses_what_the_loader_refuses() -> None:
    schema = manifest_schema()
    part = schema["$defs"]["Upgrade"]
    assert part["additionalProperties"] is False
    assert part["properties"]["finalize"]["enum"] == ["after_rollout", "manual"]
    assert part["properties"]["finalize"]["description"]
    assert schema["$defs"]["Strategy"]["properties"]["upgrade"]["description"]
    assert "upgrade" not in schema["$defs"]["Target"]["properties"]

    checked_in = json.loads((REPO / "docs" / "manifest.schema.json").read_text())
    validator = Draft202012Validator(checked_in)
    for good in (None, {}, {"finalize": "manual"}, {"finalize": "after_rollout"}):
        assert list(validator.iter_errors(with_upgrade(good))) == [], good
    for bad in ({"finalize": "Manual"}, {"finalise": "manual"}, "manual"):
        assert list(validator.iter_errors(with_upgrade(bad))), bad
