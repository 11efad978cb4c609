"""The manifest: YAML and JSON into a RolloutSpec, every problem reported with its path."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from meshfleet.asm.endpoints import endpoint_for
from meshfleet.asm.errors import AsmValidationError
from meshfleet.manifest.durations import format_duration, parse_duration
from meshfleet.manifest.load import (
    MAX_TARGETS,
    ManifestError,
    load_manifest,
    parse_manifest,
    validate_document,
)
from meshfleet.manifest.source import MAX_BYTES
from meshfleet.models import RolloutSpec
from tests.helpers.manifests import manifest, problems_of, target
from tests.helpers.paths import EXAMPLE_MANIFEST

EXAMPLE = EXAMPLE_MANIFEST
P1 = "0123456789abcdef0123456789abcdef"
P2 = "fedcba9876543210fedcba9876543210"


def test_five_mistakes_are_all_reported_with_their_paths_and_nothing_else() -> None:
    doc = manifest(
        target(0),
        target(1, mesh_name="mesh-shop-"),
        target(2, owner="team-a"),
        target(3, mesh_name="mesh-shop-0"),
        target(4, cluster_id=target(1)["cluster_id"]),
    )
    doc["strategy"]["timeout"] = "soon"

    assert problems_of(doc) == [
        "strategy.timeout: 'soon' is not a duration like '20s', '10m', '1h30m', '500ms' or a "
        "number of seconds",
        "targets[1].mesh_name: must not end with '-'",
        "targets[2].owner: unknown field",
        f"targets[3].mesh_name: 'mesh-shop-0' already used by targets[0] in project '{P1}' "
        "region 'ap-southeast-3'",
        "targets[4].cluster_id: 'cb0ef541-0000-4000-8000-000000000001' already used by "
        "targets[1]; a cluster joins one mesh",
    ]


def test_a_typo_in_a_key_is_named_with_a_suggestion() -> None:
    entry = target(0)
    entry["clustr_id"] = entry.pop("cluster_id")
    assert problems_of(manifest(entry, {**target(1), "regoin": "eu-west-101"})) == [
        "targets[0].clustr_id: unknown field (did you mean 'cluster_id'?)",
        "targets[0].cluster_id: required",
        "targets[1].regoin: unknown field (did you mean 'region'?)",
    ]


def test_top_level_strategy_and_defaults_problems_have_their_paths() -> None:
    doc = manifest(extras=1)
    doc["strategy"] = {"window": 0, "waves": [0, "150%", True], "max_failures": "lots", "pace": 1}
    doc["defaults"] = {"region": "Mars", "mesh_name": "mesh-x", "colour": "blue"}
    # A wrong type (waves[2]) does not hide the range problems of the other fields, and a bad
    # default is reported once, at the default, however many targets inherit it.
    assert problems_of(doc) == [
        "extras: unknown field",
        "strategy.pace: unknown field",
        "strategy.waves[2]: must be a count or a percentage like '10%', not true/false",
        "strategy.window: Input should be greater than or equal to 1",
        "strategy.max_failures: 'lots' is not a count or a percentage like '5%'",
        "defaults.mesh_name: must be set per target, not in defaults",
        "defaults.colour: unknown field",
        "defaults.region: 'Mars' is not a region name like ap-southeast-3 (at most 40 characters)",
    ]


def test_strategy_ranges_are_checked_by_the_model_with_manifest_names() -> None:
    doc = manifest()
    doc["strategy"] = {
        "window": 0,
        "waves": [0, "150%"],
        "max_failures": "lots",
        "poll_interval": 0,
        "create_retry": {"initial": "1s", "maximum": "1m", "backoff": 0.5, "max_attempts": 3},
    }
    assert problems_of(doc) == [
        "strategy.window: Input should be greater than or equal to 1",
        "strategy.waves[0]: a wave must hold at least 1 target",
        "strategy.max_failures: 'lots' is not a count or a percentage like '5%'",
        "strategy.poll_interval: Input should be greater than 0",
        "strategy.create_retry.backoff: Input should be greater than or equal to 1",
    ]


def test_config_problems_keep_the_api_spelling_and_blame_the_default_once() -> None:
    config = {
        "proxyConfig": {"includeIpRanges": "10.0.0.0/8"},
        "telemetryConfig": {"tracing": {"extensionProviders": [{"zipkin": {"port": 0}}]}},
    }
    doc = manifest(
        target(0),
        target(1),
        target(2, config={"proxy_config": {}}),
        target(3, config={"telemetryConfig": {"tracing": {"defaultProviders": ["nope"]}}}),
    )
    doc["defaults"]["config"] = config
    assert problems_of(doc) == [
        "defaults.config.proxyConfig.includeIpRanges: unknown field "
        "(did you mean 'includeIPRanges'?)",
        "defaults.config.telemetryConfig.tracing.extensionProviders[0].zipkin.port: "
        "Input should be greater than or equal to 1",
        "targets[2].config.proxy_config: unknown field (did you mean 'proxyConfig'?)",
        "targets[3].config.telemetryConfig.tracing: defaultProviders names 'nope', which is "
        "neither an extensionProviders name nor the preset 'apm-otel'",
    ]


def test_request_rules_are_blamed_on_the_field_at_fault() -> None:
    zipkin = {
        "telemetryConfig": {
            "tracing": {"extensionProviders": [{"name": "z", "zipkin": {"port": 9411}}]}
        }
    }
    doc = manifest(
        target(0, node_ids=["ok", ""]),
        target(1, namespaces=[""]),
        target(2, version="1.13.9-r1", config=zipkin),
        target(3, version="1.3.0-r1"),
        target(4, version="latest", project_id=12345678901234567890123456789012),
    )
    assert problems_of(doc) == [
        "targets[0].node_ids[1]: must not be empty",
        "targets[1].namespaces[0]: must not be empty",
        "targets[2].version: a Zipkin provider needs mesh version 1.15 or later, not 1.13.9-r1",
        "targets[3].version: '1.3.0-r1': mesh lines 1.3 and older can no longer be created",
        "targets[4].project_id: Input should be a valid string; put the value in quotes",
        "targets[4].version: 'latest' is not an ASM version like 1.18.7-r5",
    ]


def test_a_version_feature_is_judged_beside_another_problem_of_the_target() -> None:
    zipkin = {
        "telemetryConfig": {
            "tracing": {"extensionProviders": [{"name": "z", "zipkin": {"port": 9411}}]}
        }
    }
    doc = manifest(target(0, version="1.13.9-r1", config=zipkin, project_id="p"))
    assert problems_of(doc) == [
        "targets[0].project_id: 'p' must be 32 lower-case hexadecimal characters",
        "targets[0].version: a Zipkin provider needs mesh version 1.15 or later, not 1.13.9-r1",
    ]


def test_a_default_is_judged_even_when_every_target_sets_its_own() -> None:
    doc = manifest(target(0, version="1.18.7-r5"), target(1, version="1.15.7-r3"))
    doc["defaults"]["version"] = "latest"
    assert problems_of(doc) == [
        "defaults.version: 'latest' is not an ASM version like 1.18.7-r5",
    ]


def test_a_uid_is_never_read_from_a_manifest() -> None:
    # Only a rollback's targets carry the uid of the mesh their rollout created.
    assert problems_of(manifest(target(0, uid="0b2f"), target(1))) == [
        "targets[0].uid: unknown field",
    ]
    doc = manifest()
    doc["defaults"]["uid"] = "0b2f"
    assert problems_of(doc) == ["defaults.uid: unknown field"]


def test_yaml_and_json_give_the_same_rollout() -> None:
    doc = manifest()
    doc["strategy"]["first_poll"] = "1m30s"
    from_json = parse_manifest(json.dumps(doc, indent=2))
    from_yaml = parse_manifest(yaml.safe_dump(doc))
    from_flow_yaml = parse_manifest(yaml.safe_dump(doc, default_flow_style=True))
    assert from_json == from_yaml == from_flow_yaml
    assert from_json.strategy.first_poll_s == 90
    assert [t.mesh_name for t in from_json.targets] == ["mesh-shop-0", "mesh-shop-1"]


def test_defaults_apply_and_any_default_is_overridden_per_target() -> None:
    doc = manifest(
        target(0),
        target(
            1,
            region="eu-west-101",
            version="1.15.7-r3",
            namespaces=["shop"],
            ipv6=True,
            config=None,
        ),
        target(2, project_id=P2),
    )
    doc["defaults"] |= {
        "namespaces": ["default", "tools"],
        "config": {"proxyConfig": {"includeIPRanges": "10.0.0.0/8"}},
        "project_id": P2,
    }
    spec = validate_document(doc)
    first, second, third = spec.targets
    assert (first.region, first.version, first.namespaces, first.ipv6) == (
        "ap-southeast-3",
        "1.18.7-r5",
        ["default", "tools"],
        False,
    )
    assert first.config == {"proxyConfig": {"includeIPRanges": "10.0.0.0/8"}}
    assert first.project_id == P1  # the target's own project beats the default one
    assert (second.region, second.version, second.namespaces, second.ipv6) == (
        "eu-west-101",
        "1.15.7-r3",
        ["shop"],
        True,
    )
    assert second.config is None
    assert second.to_request().spec.ipv6_enable is True
    assert third.project_id == P2


def test_a_required_field_missing_everywhere_is_reported_at_the_target() -> None:
    entry = target(0)
    del entry["project_id"]
    assert problems_of(manifest(entry)) == ["targets[0].project_id: required, here or in defaults"]


def test_duplicates_are_per_project_and_region_and_clusters_are_global() -> None:
    doc = manifest(
        target(0),
        target(1, mesh_name="mesh-shop-0", region="eu-west-101"),  # other region: fine
        target(2, mesh_name="mesh-shop-0", project_id=P2),  # other project: fine
        target(3, mesh_name="mesh-shop-0"),
        target(4, mesh_name="mesh-shop-0", region="eu-west-101"),
        target(5, project_id=P2, cluster_id=target(0)["cluster_id"]),
    )
    assert problems_of(doc) == [
        f"targets[3].mesh_name: 'mesh-shop-0' already used by targets[0] in project '{P1}' "
        "region 'ap-southeast-3'",
        f"targets[4].mesh_name: 'mesh-shop-0' already used by targets[1] in project '{P1}' "
        "region 'eu-west-101'",
        "targets[5].cluster_id: 'cb0ef541-0000-4000-8000-000000000000' already used by "
        "targets[0]; a cluster joins one mesh",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20s", 20),
        ("10m", 600),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1m30s", 90),
        ("1d", 86400),
        ("2.5s", 2.5),
        ("45", 45),
        (" 7s ", 7),
        (30, 30),
        (0.25, 0.25),
    ],
)
def test_durations_parse(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "s", "10", "1x", "30m1h", "1h1h", "-5s", "1 h", True, None])
def test_bad_durations_are_refused(bad: object) -> None:
    if bad == "10":
        return  # plain digits are seconds; kept in the list to show the contrast
    with pytest.raises(ValueError, match=r"duration|negative|finite"):
        parse_duration(bad)


def test_durations_map_onto_the_strategy_and_format_back() -> None:
    doc = manifest()
    doc["strategy"] |= {
        "first_poll": "500ms",
        "poll_interval": 10,
        "timeout": "1h30m",
        "heartbeat_timeout": "15s",
    }
    doc["strategy"]["create_retry"] = {"initial": "2s", "maximum": "5m", "max_attempts": 4}
    strategy = validate_document(doc).strategy
    assert (strategy.first_poll_s, strategy.poll_interval_s, strategy.timeout_s) == (
        0.5,
        10.0,
        5400.0,
    )
    assert strategy.heartbeat_timeout_s == 15.0
    assert (strategy.create_retry.initial_s, strategy.create_retry.maximum_s) == (2.0, 300.0)
    assert strategy.create_retry.max_attempts == 4
    assert [format_duration(s) for s in (0.5, 10, 5400, 86461)] == [
        "500ms",
        "10s",
        "1h30m",
        "1d1m1s",
    ]
    doc["strategy"] |= {"timeout": "45d", "poll_interval": 0}
    assert problems_of(doc) == [
        "strategy.timeout: '45d' is longer than 30d",
        "strategy.poll_interval: Input should be greater than 0",
    ]


def test_the_example_fleet_validates() -> None:
    spec = load_manifest(EXAMPLE)
    assert len(spec.targets) >= 24
    assert len({t.project_id for t in spec.targets}) >= 5
    assert len({t.region for t in spec.targets}) >= 3
    strategy = spec.strategy
    assert strategy.window == 8
    assert strategy.waves == [1, "25%", "100%"]
    assert strategy.max_failures == "10%"
    assert (strategy.first_poll_s, strategy.poll_interval_s, strategy.timeout_s) == (1, 1, 120)
    configs = [t.to_request().spec.config for t in spec.targets]
    with_zipkin = [
        c
        for c in configs
        if c and c.telemetry_config and c.telemetry_config.tracing
        if any(p.zipkin for p in c.telemetry_config.tracing.extension_providers or [])
    ]
    assert with_zipkin
    assert all(c.proxy_config.include_ip_ranges for c in with_zipkin if c.proxy_config)


def test_the_derived_rollout_id_is_stable_and_follows_the_content() -> None:
    doc = manifest()
    spec = validate_document(doc)
    assert spec.rollout_id.startswith("fleet-")
    assert len(spec.rollout_id) == len("fleet-") + 12
    # Formatting, syntax and where a value is written do not change what is rolled out.
    assert parse_manifest(json.dumps(doc)).rollout_id == spec.rollout_id
    assert parse_manifest("# the fleet\n" + yaml.safe_dump(doc)).rollout_id == spec.rollout_id
    moved = copy.deepcopy(doc)
    del moved["defaults"]["version"]
    for entry in moved["targets"]:
        entry["version"] = "1.18.7-r5"
    assert validate_document(moved).rollout_id == spec.rollout_id
    # What is rolled out does.
    changed = copy.deepcopy(doc)
    changed["targets"][1]["node_ids"].append("another-node")
    assert validate_document(changed).rollout_id != spec.rollout_id
    reordered = copy.deepcopy(doc)
    reordered["targets"].reverse()
    assert validate_document(reordered).rollout_id != spec.rollout_id


def test_an_explicit_rollout_id_is_used_and_checked() -> None:
    doc = manifest()
    assert validate_document(doc, rollout_id="rel-2026.11.25").rollout_id == "rel-2026.11.25"
    with pytest.raises(ManifestError, match=re.escape("rollout_id: 'rel-1\\n' is not a rollout")):
        validate_document(doc, rollout_id="rel-1\n")
    with pytest.raises(ManifestError) as caught:
        validate_document(doc, rollout_id="rel 2026/11")
    assert caught.value.problems == [
        "rollout_id: 'rel 2026/11' is not a rollout id: 1-128 letters, digits, '.', '_', ':' "
        "or '-', starting with a letter or digit"
    ]


def test_the_model_and_the_manifest_refuse_a_rollout_id_alike() -> None:
    spec = validate_document(manifest())
    with pytest.raises(ValidationError) as refused:
        RolloutSpec.model_validate(spec.model_dump() | {"rollout_id": "rel 2026/11"})
    with pytest.raises(ManifestError) as caught:
        validate_document(manifest(), rollout_id="rel 2026/11")
    (error,) = refused.value.errors()
    assert caught.value.problems == [f"rollout_id: {error['ctx']['error']}"]


def test_a_region_too_long_for_a_host_name_is_refused_as_the_client_refuses_it() -> None:
    # Shaped like a region, but 47 characters: more than a host name label of ASM may carry.
    region = "eu-west-" + "a" * 39
    assert len(region) == 47
    with pytest.raises(ManifestError) as caught:
        validate_document(manifest(defaults={"region": region}))
    with pytest.raises(AsmValidationError) as refused:
        endpoint_for(region)
    (line,) = caught.value.problems
    path, _, message = line.partition(": ")
    assert path == "defaults.region"
    # The client's error is the field's name and then the very same message.
    assert str(refused.value) == f"region {message}"


def test_too_many_targets_are_refused_before_validating_them() -> None:
    entry = target(0)
    doc = manifest(*([entry] * (MAX_TARGETS + 1)))
    assert problems_of(doc) == [
        "targets: 20,001 targets; at most 20,000 per manifest, split the fleet into several "
        "rollouts"
    ]


def test_an_oversize_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "fleet.yaml"
    with big.open("wb") as out:
        out.truncate(MAX_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ManifestError, match="larger than 32 MiB"):
        load_manifest(big)
    with pytest.raises(ManifestError, match="larger than 32 MiB"):
        load_manifest("-", stdin=io.BytesIO(b"#" * (MAX_BYTES + 1)))


def test_stdin_is_read_for_dash() -> None:
    stdin = io.BytesIO(json.dumps(manifest()).encode())
    assert len(load_manifest("-", stdin=stdin).targets) == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the manifest is empty; expected a mapping with strategy and targets"),
        ("- a\n- b\n", "the manifest must be a mapping with strategy and targets, not a list"),
        ("just words", "the manifest must be a mapping with strategy and targets, not a string"),
        (
            "targets:\n  - project_id: x\n   cluster_id: y\n",
            "YAML syntax error at line 3 column 4: ",
        ),
        ('{"targets": [1,]}', "targets[0]: must be a mapping"),  # YAML allows the comma
        ('{\n  "targets": [1, 2\n}', "JSON syntax error at line 3 column 1: "),
        ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a'"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ("a: !!python/object:os.system x", "YAML syntax error at line 1 column 4: "),
        ("a: !!int nope", "cannot read YAML: "),
        (b"\xff\xfe\x00", "not UTF-8 text (byte 0)"),
        ("a: &x [*x]", "nested deeper than 64 levels"),
    ],
)
def test_unreadable_documents_are_refused_with_a_reason(text: str | bytes, problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)


def test_an_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ManifestError, match="once YAML aliases are expanded"):
        parse_manifest("\n".join(lines))


def test_yaml_merge_keys_override_without_being_duplicates() -> None:
    text = (
        f"x-shared: &shared {{project_id: '{P1}', region: cn-north-4, node_ids: [n1]}}\n"
        "targets:\n"
        "  - {<<: *shared, cluster_id: c1, mesh_name: mesh-one}\n"
        "  - {<<: *shared, cluster_id: c2, mesh_name: mesh-two, node_ids: [n2]}\n"
    )
    one, two = parse_manifest(text).targets
    assert (one.region, one.node_ids, two.node_ids) == ("cn-north-4", ["n1"], ["n2"])
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text.replace("x-shared", "shared"))
    assert caught.value.problems == ["shared: unknown field"]


def test_a_lone_surrogate_is_a_problem_not_a_crash() -> None:
    doc = json.dumps(manifest(target(0, node_ids=["\ud800"])))
    with pytest.raises(ManifestError, match=r"targets\[0\]\.node_ids\[0\]: .*unicode"):
        parse_manifest(doc)


# --- fuzz: whatever the input, the answer is a RolloutSpec or a ManifestError --------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["20s", "5%", "100%", "1.18.7-r5", P1, "ap-southeast-3", "mesh-abcd", ""])
)
_junk = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)
_field_names = st.sampled_from(
    [
        "project_id",
        "region",
        "cluster_id",
        "mesh_name",
        "version",
        "node_ids",
        "namespaces",
        "ipv6",
        "config",
        "window",
        "waves",
        "max_failures",
        "first_poll",
        "timeout",
        "create_retry",
        "soak",
        "verify",
        "approve_after",
        "regions",
    ]
)
_near_manifests = st.fixed_dictionaries(
    {},
    optional={
        "strategy": st.dictionaries(_field_names, _junk, max_size=5),
        "defaults": st.dictionaries(_field_names, _junk, max_size=5),
        "targets": st.lists(
            st.builds(
                lambda base, extra: {**base, **extra},
                st.builds(target, st.integers(0, 3)),
                st.dictionaries(_field_names, _junk, max_size=3),
            ),
            max_size=4,
        ),
    },
)


def _only_manifest_errors(run: Any) -> None:
    try:
        result = run()
    except ManifestError as exc:
        assert exc.problems
        assert all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert isinstance(result, RolloutSpec)


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(_junk)
def test_fuzz_any_structure(doc: Any) -> None:
    _only_manifest_errors(lambda: validate_document(doc))


@_FUZZ
@given(_near_manifests)
def test_fuzz_near_valid_manifests(doc: dict[str, Any]) -> None:
    _only_manifest_errors(lambda: validate_document(doc))
    _only_manifest_errors(lambda: parse_manifest(json.dumps(doc)))


@_FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_fuzz_any_text(text: str | bytes) -> None:
    _only_manifest_errors(lambda: parse_manifest(text))


@_FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "targets:",
                "  - ",
                "project_id: ",
                P1,
                "{",
                "}",
                "[",
                "]",
                ": ",
                ", ",
                "\n",
                "&a ",
                "*a",
                "<<: ",
                "!!int ",
                "!!timestamp ",
                "!!binary ",
                "!!set ",
                "? ",
                "- ",
                '"',
                "'",
                "---\n",
                "%YAML 1.1\n",
                "\t",
                "1e999",
                "mesh_name: ",
                "strategy: ",
                "waves: ",
            ]
        ),
        max_size=30,
    )
)
def test_fuzz_yaml_shaped_text(pieces: list[str]) -> None:
    _only_manifest_errors(lambda: parse_manifest("".join(pieces)))
