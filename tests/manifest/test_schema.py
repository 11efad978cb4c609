"""The manifest's JSON Schema: generated from the document model, checked in, and as strict as
the loader on every manifest the project ships or writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from typer.testing import CliRunner

from meshfleet.cli import schema as schema_cli
from meshfleet.cli.core import Group
from meshfleet.manifest.document import REGENERATE, manifest_schema
from meshfleet.manifest.load import ManifestError, parse_manifest, validate_document
from tests.helpers.cli_run import FAST_STRATEGY, manifest_target, write_manifest
from tests.helpers.manifests import manifest, target
from tests.helpers.paths import EXAMPLE_MANIFEST, REPO
from tests.reliability.test_bad_manifest import valid_manifest

CHECKED_IN = REPO / "docs" / "manifest.schema.json"
P1 = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(CHECKED_IN.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(validator: Draft202012Validator, doc: Any) -> list[str]:
    """``path: message`` for each way ``doc`` breaks the schema (each branch of an ``anyOf``
    that it matches none of, such as a part that may also be null)."""
    lines = []
    errors = list(validator.iter_errors(doc))
    while errors:
        error = errors.pop()
        if error.context:
            errors.extend(error.context)
        else:
            lines.append(f"{'.'.join(map(str, error.absolute_path))}: {error.message}")
    return sorted(lines)


def test_the_checked_in_schema_is_the_generated_one() -> None:
    assert CHECKED_IN.read_text() == schema_cli.schema_text(), (
        f"{CHECKED_IN.relative_to(REPO)} is out of date with the manifest's models; "
        f"regenerate it: {REGENERATE}"
    )


def test_the_schema_names_its_dialect_and_describes_every_key() -> None:
    schema = manifest_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    parts = ("Strategy", "CreateRetry", "Verify", "Regions", "Defaults", "Target")
    for part in (schema, *(schema["$defs"][name] for name in parts)):
        assert part["additionalProperties"] is False
        undescribed = [
            key for key, prop in part["properties"].items() if not prop.get("description")
        ]
        assert undescribed == [], part.get("title")
    # The payload field names stay out of the manifest's spelling.
    assert "first_poll" in schema["$defs"]["Strategy"]["properties"]
    assert "first_poll_s" not in schema["$defs"]["Strategy"]["properties"]
    assert "uid" not in schema["$defs"]["Target"]["properties"]


def test_schema_prints_the_schema_as_the_checked_in_copy() -> None:
    app = typer.Typer(cls=Group)
    schema_cli.register(app)
    # With one command typer would run it without its name; a second keeps `schema` a name.
    app.command(name="other")(lambda: None)
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout == CHECKED_IN.read_text()
    assert json.loads(result.stdout) == manifest_schema()


# --- the manifests the project ships and writes ---------------------------------------------------


def manifest_files() -> list[Path]:
    """Every meshfleet manifest file under examples/ and tests/ (YAML with ``targets``)."""
    found = []
    for path in sorted([*REPO.glob("examples/**/*.y*ml"), *REPO.glob("tests/**/*.y*ml")]):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict) and "targets" in doc:
            found.append(path)
    return found


def test_every_manifest_file_is_valid_for_the_loader_and_the_schema(
    validator: Draft202012Validator,
) -> None:
    files = manifest_files()
    assert EXAMPLE_MANIFEST in files
    for path in files:
        parse_manifest(path.read_bytes())
        assert schema_problems(validator, yaml.safe_load(path.read_text())) == [], path


def test_the_example_names_the_schema_for_editors() -> None:
    first = EXAMPLE_MANIFEST.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../docs/manifest.schema.json"
    assert (EXAMPLE_MANIFEST.parent / "../docs/manifest.schema.json").resolve() == CHECKED_IN


def progressive() -> dict[str, Any]:
    doc = manifest(target(0), target(1, region="eu-west-101"), target(2))
    doc["strategy"] |= {
        "soak": "10m",
        "verify": {"webhook": "https://checks.example.com/verify?sig=abc"},
        "approve_after": [1],
        "regions": {"order": ["ap-southeast-3", "eu-west-101"], "max_failures": "50%"},
        "create_retry": {"initial": 1, "maximum": "1m", "backoff": 1.5, "max_attempts": 3},
        "heartbeat_timeout": "15s",
    }
    doc["defaults"] |= {
        "namespaces": [],
        "ipv6": True,
        "config": {"proxyConfig": {"includeIPRanges": "10.0.0.0/8"}},
    }
    return doc


def anchored() -> Any:
    return yaml.safe_load(
        f"x-shared: &shared {{project_id: '{P1}', region: cn-north-4, node_ids: [n1]}}\n"
        "strategy:\n  verify: true\n  approve_after:\n"
        "targets:\n"
        "  - {<<: *shared, cluster_id: c1, mesh_name: mesh-one}\n"
        "  - {<<: *shared, cluster_id: c2, mesh_name: mesh-two, config: null}\n"
    )


def written_by_the_cli_helpers(tmp_path: Path) -> Any:
    targets = [manifest_target(P1, "mesh-alpha"), manifest_target(P1, "mesh-bravo")]
    path = write_manifest(tmp_path / "fleet.yaml", targets, waves=[1, "100%"], approve_after=[1])
    return yaml.safe_load(path.read_text())


def test_the_tests_own_manifests_are_valid_for_the_loader_and_the_schema(
    validator: Draft202012Validator, tmp_path: Path
) -> None:
    docs = {
        "helpers.manifests": manifest(),
        "progressive": progressive(),
        "yaml anchors": anchored(),
        "test_bad_manifest": valid_manifest(),
        "cli_run.write_manifest": written_by_the_cli_helpers(tmp_path),
        "fast strategy": {"strategy": FAST_STRATEGY, "targets": manifest()["targets"]}
        | {"defaults": manifest()["defaults"]},
        "no strategy": {"strategy": None, "targets": [target(0, region="ap-southeast-1")]},
    }
    for name, doc in docs.items():
        validate_document(copy.deepcopy(doc))
        assert schema_problems(validator, doc) == [], name


# --- what the schema refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.update(extras=1), ""),
        (lambda d: d["strategy"].update(windw=4), "strategy"),
        (lambda d: d["strategy"].update(first_poll_s=4), "strategy"),
        (lambda d: d["targets"][0].update(clustr_id="c"), "targets.0"),
        (lambda d: d["targets"][0].update(uid="u"), "targets.0"),
        (lambda d: d["defaults"].update(mesh_name="mesh-x"), "defaults"),
        (
            lambda d: d["defaults"].update(config={"proxyConfig": {"includeIpRanges": "x"}}),
            "defaults.config.proxyConfig",
        ),
        (lambda d: d["strategy"].update(window="4"), "strategy.window"),
        (lambda d: d["strategy"].update(window=True), "strategy.window"),
        (lambda d: d["strategy"].update(waves="10%"), "strategy.waves"),
        (lambda d: d["strategy"].update(timeout="soon"), "strategy.timeout"),
        (lambda d: d["strategy"].update(max_failures="lots"), "strategy.max_failures"),
        (lambda d: d["strategy"].update(verify="yes"), "strategy.verify"),
        (lambda d: d["strategy"].update(regions={"mode": "both"}), "strategy.regions"),
        (lambda d: d["targets"][1].update(mesh_name="Mesh_1"), "targets.1.mesh_name"),
        (lambda d: d["targets"][1].update(project_id=12345), "targets.1.project_id"),
        (lambda d: d["targets"][1].update(node_ids=[]), "targets.1.node_ids"),
        (lambda d: d["defaults"].pop("region"), "targets.0"),
        (lambda d: d.pop("targets"), ""),
        (lambda d: d.update(targets=[]), "targets"),
    ],
    ids=[
        "unknown top-level key",
        "unknown strategy key",
        "payload name of a duration",
        "misspelt target key",
        "uid in a target",
        "per-target key in defaults",
        "unknown config key",
        "window as a string",
        "window as true",
        "waves not a list",
        "not a duration",
        "not a budget",
        "verify as a string",
        "unknown region mode",
        "bad mesh name",
        "project id as a number",
        "no node ids",
        "region nowhere",
        "no targets key",
        "no targets",
    ],
)
def test_a_bad_manifest_breaks_the_schema_as_it_fails_the_loader(
    validator: Draft202012Validator, change: Any, where: str
) -> None:
    doc = manifest()
    change(doc)
    with pytest.raises(ManifestError):
        validate_document(copy.deepcopy(doc))
    problems = schema_problems(validator, doc)
    assert problems, doc
    assert any(line.startswith(f"{where}:") or line.startswith(f"{where}.") for line in problems)


# --- the loader and the schema agree --------------------------------------------------------------

_strategy_values: dict[str, st.SearchStrategy[Any]] = {
    "window": st.integers(-1, 1001),
    "waves": st.lists(st.integers(0, 5) | st.sampled_from(["10%", "100%", "0%", "x"]), max_size=3),
    "max_failures": st.integers(-1, 3) | st.sampled_from(["5%", "100%", "150%", "lots"]),
    "first_poll": st.sampled_from([0, 0.5, "20s", "1h30m", "30m1h", "31d", -1, "", None]),
    "timeout": st.sampled_from([0, 1, "10m", "2d", "soon"]),
    "soak": st.sampled_from([0, "10m", "x"]),
    "verify": st.sampled_from([True, False, None, {}, {"webhook": "https://h.example/v"}, "yes"]),
    "approve_after": st.lists(st.integers(0, 4), max_size=2) | st.none(),
    "regions": st.sampled_from(
        [None, {"order": ["ap-southeast-3"]}, {"order": ["ap-southeast-3"], "mode": "parallel"}]
    ),
    "create_retry": st.sampled_from([{}, {"initial": "1s"}, {"backoff": 0.5}, {"max_attempts": 0}]),
}
_target_values: dict[str, st.SearchStrategy[Any]] = {
    "region": st.sampled_from(["ap-southeast-3", "eu-west-101", "Mars", 7]),
    "version": st.sampled_from(["1.18.7-r5", "1.15.7-r3", "latest", "1.3.0-r1"]),
    "namespaces": st.sampled_from([[], ["default"], [""], "default"]),
    "ipv6": st.booleans() | st.just("x"),
    "node_ids": st.sampled_from([["n1"], [], [""], None]),
    "mesh_name": st.sampled_from(["mesh-ok-1", "mesh-", "Mesh"]),
    "config": st.sampled_from([None, {}, {"proxyConfig": {}}, {"proxy_config": {}}]),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries({}, optional=_strategy_values),
    st.lists(st.fixed_dictionaries({}, optional=_target_values), min_size=1, max_size=3),
)
def test_what_the_loader_accepts_the_schema_accepts(
    validator: Draft202012Validator, strategy: dict[str, Any], overrides: list[dict[str, Any]]
) -> None:
    doc = manifest(*(target(i, **extra) for i, extra in enumerate(overrides)))
    doc["strategy"] = strategy
    try:
        validate_document(copy.deepcopy(doc))
    except ManifestError:
        return  # the schema may accept what only the loader's rules refuse (a gate's wave)
    assert schema_problems(validator, doc) == []
