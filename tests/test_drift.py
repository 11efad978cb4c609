"""How a mesh differs from its target: configuration fields and version (meshfleet/drift.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshfleet.asm.models import Mesh
from meshfleet.drift import FieldChange, compare, config_changes, version_key, version_order
from meshfleet.models import MeshTarget
from tests.helpers.fleet import SAMPLE_TARGET

# The seed's example: the configuration a create request sends, and the one its 201 echoes
# (the same values, its objects in another order).
REQUESTED: dict[str, Any] = {
    "proxyConfig": {"includeIPRanges": "10.247.0.0/16"},
    "telemetryConfig": {
        "metrics": {"aom": [{"instanceID": "602a5b7e-xxxx-xxxx-xxxx-4268c35b0424"}]},
        "accessLogging": {
            "lts": [
                {
                    "logGroupID": "b884eaeb-xxxx-xxxx-xxxx-f442de73c392",
                    "logStreamID": "362e11e8-xxxx-xxxx-xxxx-0afdc68da7d2",
                }
            ]
        },
        "tracing": {
            "randomSamplingPercentage": 1,
            "defaultProviders": ["zipkin"],
            "extensionProviders": [
                {
                    "name": "zipkin",
                    "zipkin": {"service": "zipkin.monitoring.svc.cluster.local", "port": 9411},
                }
            ],
        },
    },
}
ECHOED: dict[str, Any] = {
    "telemetryConfig": {
        "metrics": {"aom": [{"instanceID": "602a5b7e-xxxx-xxxx-xxxx-4268c35b0424"}]},
        "accessLogging": {
            "lts": [
                {
                    "logGroupID": "b884eaeb-xxxx-xxxx-xxxx-f442de73c392",
                    "logStreamID": "362e11e8-xxxx-xxxx-xxxx-0afdc68da7d2",
                }
            ]
        },
        "tracing": {
            "randomSamplingPercentage": 1,
            "defaultProviders": ["zipkin"],
            "extensionProviders": [
                {
                    "name": "zipkin",
                    "zipkin": {"service": "zipkin.monitoring.svc.cluster.local", "port": 9411},
                }
            ],
        },
    },
    "proxyConfig": {"includeIPRanges": "10.247.0.0/16"},
}


def changed(**edits: Any) -> dict[str, Any]:
    """The requested configuration with ``edits`` (dotted paths) applied; None deletes."""
    config = copy.deepcopy(REQUESTED)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = config
        for name in parents:
            node = node.setdefault(name, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return config


def test_the_seeds_own_echo_is_in_sync_with_its_request() -> None:
    assert config_changes(REQUESTED, ECHOED) == []


def test_a_changed_sampling_rate_is_one_field_with_both_values() -> None:
    wanted = changed(telemetryConfig__tracing__randomSamplingPercentage=10)

    changes = config_changes(wanted, ECHOED)

    assert changes == [
        FieldChange("config.telemetryConfig.tracing.randomSamplingPercentage", 1, 10)
    ]
    assert changes[0].text() == "config.telemetryConfig.tracing.randomSamplingPercentage: 1 -> 10"


@pytest.mark.parametrize(
    ("wanted", "echoed"),
    [
        (
            {"proxyConfig": {"excludeInboundPorts": "8080, 9090"}},
            {"proxyConfig": {"excludeInboundPorts": "9090,8080"}},
        ),
        (
            {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 1.0}}},
            {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 1}}},
        ),
        (
            {"proxyConfig": {"includeIPRanges": "10.0.0.0/8", "excludeIPRanges": None}},
            {"proxyConfig": {"includeIPRanges": "10.0.0.0/8"}},
        ),
        ({"telemetryConfig": {}}, {}),
        (None, None),
    ],
    ids=["port-order", "int-is-float", "null-is-absent", "empty-object", "no-config"],
)
def test_what_the_echo_spells_otherwise_is_not_drift(wanted: Any, echoed: Any) -> None:
    assert config_changes(wanted, echoed) == []


def test_a_field_the_manifest_dropped_is_drift_to_absent() -> None:
    wanted = changed(proxyConfig=None)

    assert [c.text() for c in config_changes(wanted, ECHOED)] == [
        'config.proxyConfig: {"includeIPRanges": "10.247.0.0/16"} -> absent'
    ]


def test_lists_compare_item_by_item_and_in_order() -> None:
    aom = [{"instanceID": "a"}, {"instanceID": "b"}]
    wanted = changed(telemetryConfig__metrics__aom=aom)
    echoed = copy.deepcopy(REQUESTED)
    echoed["telemetryConfig"]["metrics"]["aom"] = [{"instanceID": "a"}, {"instanceID": "c"}]

    assert config_changes(wanted, echoed) == [
        FieldChange("config.telemetryConfig.metrics.aom[1].instanceID", "c", "b")
    ]
    assert config_changes(
        {"telemetryConfig": {"tracing": {"defaultProviders": ["a", "b"]}}},
        {"telemetryConfig": {"tracing": {"defaultProviders": ["b", "a"]}}},
    ) == [FieldChange("config.telemetryConfig.tracing.defaultProviders", ["b", "a"], ["a", "b"])]


@pytest.mark.parametrize(
    ("mesh", "wanted", "order"),
    [
        ("1.18.7-r5", "1.18.7-r5", "same"),
        ("1.15.7-r3", "1.18.7-r5", "older"),
        ("1.18.7-r4", "1.18.7-r5", "older"),
        ("1.18.7-r5", "1.15.7-r3", "newer"),
        ("1.18.7", "1.18.7-r1", "older"),
    ],
)
def test_versions_order_by_line_patch_and_revision(mesh: str, wanted: str, order: str) -> None:
    assert version_order(mesh, wanted) == order


def test_a_version_that_is_not_one_names_itself() -> None:
    with pytest.raises(ValueError, match="'latest' is not an ASM version"):
        version_key("latest")


def seed_mesh(config: dict[str, Any] | None = ECHOED, version: str | None = "1.18.7-r5") -> Mesh:
    """The seed's example 201 answer, with another configuration or version if asked."""
    spec: dict[str, Any] = {"type": "InCluster", "config": config}
    if version is not None:
        spec["version"] = version
    spec["extendParams"] = {"clusters": [{"clusterID": "cluster-a"}]}
    return Mesh.model_validate(
        {
            "kind": "Mesh",
            "apiVersion": "v1",
            "metadata": {"name": "mesh-a", "uid": "a1efdc3e-xxxx"},
            "spec": spec,
            "status": {"phase": "Running"},
        }
    )


def wanting(config: dict[str, Any] | None = REQUESTED, version: str = "1.18.7-r5") -> MeshTarget:
    return SAMPLE_TARGET.model_copy(update={"config": config, "version": version})


def test_a_mesh_as_the_manifest_says_is_in_sync() -> None:
    comparison = compare(wanting(), seed_mesh())
    assert (comparison.kind, comparison.changes) == ("in_sync", [])


def test_another_configuration_is_an_update_naming_each_field() -> None:
    target = wanting(changed(telemetryConfig__tracing__randomSamplingPercentage=10))

    comparison = compare(target, seed_mesh())

    assert comparison.kind == "update"
    assert [c.text() for c in comparison.changes] == [
        "config.telemetryConfig.tracing.randomSamplingPercentage: 1 -> 10"
    ]


def test_an_older_mesh_is_an_upgrade_and_a_newer_one_a_downgrade_refused() -> None:
    older = compare(wanting(), seed_mesh(version="1.15.7-r3"))
    newer = compare(wanting(version="1.15.7-r3"), seed_mesh())

    assert (older.kind, older.mesh_version) == ("upgrade", "1.15.7-r3")
    assert (newer.kind, newer.mesh_version) == ("downgrade", "1.18.7-r5")


def test_a_mesh_that_echoes_no_version_is_judged_by_its_configuration() -> None:
    assert compare(wanting(), seed_mesh(version=None)).kind == "in_sync"
    assert compare(wanting(None), seed_mesh(version=None)).kind == "update"


@pytest.mark.parametrize("echoed", ["1.18", "1.18.7-r5-beta", "latest"])
def test_a_version_in_no_asm_form_is_not_judged_and_raises_nothing(echoed: str) -> None:
    # The adoption after a 409 asks this too: an odd echo must never fail a create.
    assert compare(wanting(), seed_mesh(version=echoed)).kind == "in_sync"
