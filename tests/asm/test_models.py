"""The ASM request and response models against the seed's example and every rule it states."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from meshfleet.asm.models import (
    CreateMeshRequest,
    FieldSelector,
    Mesh,
    MeshList,
    MeshMetadata,
    MeshPhase,
    Selector,
    version_tuple,
)
from meshfleet.asm.rules import mesh_name_problem

# The request and response examples of the published create API page
# (tests/asm/fixtures/README.md).
FIXTURES = Path(__file__).parent / "fixtures"
# Derandomized so a run is reproducible; the examples still cover every branch of the rules.
PROPERTY = settings(derandomize=True, max_examples=150, deadline=None)

Body = dict[str, Any]


def _load(name: str) -> Body:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture
def seed_request() -> Body:
    """The seed page's example create request, as parsed JSON."""
    return _load("create-mesh-request.json")


@pytest.fixture
def seed_response() -> Body:
    """The seed page's example 201 response, as parsed JSON."""
    return _load("create-mesh-response-201.json")


def _refusal(body: Body, mutate: Callable[[Body], None]) -> tuple[str, str]:
    """Mutate a copy of a valid body; return (dotted loc of the one error, full message)."""
    broken = copy.deepcopy(body)
    mutate(broken)
    with pytest.raises(ValidationError) as info:
        CreateMeshRequest.model_validate(broken)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(part) for part in errors[0]["loc"]), str(info.value)


def _cluster(body: Body) -> Body:
    cluster = body["spec"]["extendParams"]["clusters"][0]
    assert isinstance(cluster, dict)
    return cluster


def _tracing(body: Body) -> Body:
    tracing = body["spec"]["config"]["telemetryConfig"]["tracing"]
    assert isinstance(tracing, dict)
    return tracing


def _apm_otel_on_115(body: Body) -> None:
    body["spec"]["version"] = "1.15.7-r3"
    _tracing(body).update(defaultProviders=["apm-otel"], extensionProviders=[])


# --- the seed's example --------------------------------------------------------------------


def test_seed_request_round_trips_to_the_same_json(seed_request: Body) -> None:
    request = CreateMeshRequest.model_validate(seed_request)
    assert request.to_wire() == seed_request
    # The client sends these exact compact bytes; they must parse back to the seed's JSON.
    wire = json.dumps(request.to_wire(), separators=(",", ":"))
    assert json.loads(wire) == seed_request


def test_seed_request_reads_as_python_names(seed_request: Body) -> None:
    request = CreateMeshRequest.model_validate(seed_request)
    cluster = request.spec.extend_params.clusters[0]
    assert request.metadata.name == "mesh-test-api"
    assert cluster.cluster_id == "cb0ef541-xxxx-xxxx-xxxx-0255ac1001b7"
    assert cluster.installation.nodes.field_selector.key == "UID"
    assert request.spec.config is not None
    assert request.spec.config.proxy_config is not None
    assert request.spec.config.proxy_config.include_ip_ranges == "10.247.0.0/16"


def test_selector_by_builds_the_wire_shape() -> None:
    assert Selector.by("UID", ["n1", "n2"]).to_wire() == {
        "fieldSelector": {"key": "UID", "operator": "In", "values": ["n1", "n2"]}
    }


def test_unset_optional_fields_stay_off_the_wire(seed_request: Body) -> None:
    del seed_request["spec"]["config"]
    wire = CreateMeshRequest.model_validate(seed_request).to_wire()
    assert "config" not in wire["spec"]
    assert "ipv6Enable" not in wire["spec"]


def test_seed_201_response_parses(seed_response: Body) -> None:
    mesh = Mesh.model_validate(seed_response)
    assert mesh.uid == "a1efdc3e-xxxx-xxxx-xxxx-94bef433347e"
    assert mesh.phase == "Creating"
    assert mesh.status.known_phase is MeshPhase.CREATING
    assert mesh.status.known_phase.in_progress
    assert mesh.cluster_ids == ["cb0ef541-xxxx-xxxx-xxxx-0255ac1001b7"]
    assert mesh.metadata.creation_timestamp == "2025-04-10T07:48:37Z"


def test_response_models_keep_unknown_fields(seed_response: Body) -> None:
    seed_response["futureTopLevel"] = {"a": 1}
    seed_response["metadata"]["labels"] = {"team": "mesh"}
    seed_response["status"]["reason"] = "quota"
    seed_response["spec"]["extendParams"]["clusters"][0]["role"] = "primary"
    mesh = Mesh.model_validate(seed_response)
    assert mesh.model_extra == {"futureTopLevel": {"a": 1}}
    assert mesh.metadata.model_extra == {"labels": {"team": "mesh"}}
    dumped = mesh.model_dump(by_alias=True, exclude_none=True)
    assert dumped["status"]["reason"] == "quota"
    assert dumped["spec"]["extendParams"]["clusters"][0]["role"] == "primary"


def test_unknown_phase_is_kept_as_text(seed_response: Body) -> None:
    seed_response["status"]["phase"] = "Hibernating"
    mesh = Mesh.model_validate(seed_response)
    assert mesh.phase == "Hibernating"
    assert mesh.status.known_phase is None


def test_mesh_list_parses(seed_response: Body) -> None:
    listing = MeshList.model_validate(
        {"apiVersion": "v1", "kind": "MeshList", "items": [seed_response, seed_response]}
    )
    assert [m.uid for m in listing.items] == [seed_response["metadata"]["uid"]] * 2
    assert MeshList.model_validate({}).items == []


@pytest.mark.parametrize("phase", list(MeshPhase))
def test_every_failed_phase_is_terminal(phase: MeshPhase) -> None:
    assert phase.failed == phase.value.endswith("Failed")
    assert not (phase.failed and phase.in_progress)


# --- every rule of the seed, each refusal naming its field ---------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("abc", "4 to 64"),
        ("a" * 65, "4 to 64"),
        ("", "4 to 64"),
        ("1mesh", "start with a lower-case letter"),
        ("-mesh", "start with a lower-case letter"),
        ("Mesh", "start with a lower-case letter"),
        ("mesh-", "must not end with '-'"),
        ("mesh_a", "only lower-case letters"),
        ("mesh.a", "only lower-case letters"),
        ("meSh", "only lower-case letters"),
        ("mesh\n", "only lower-case letters"),
        ("mesh a", "only lower-case letters"),
        ("meşh", "only lower-case letters"),
    ],
)
def test_mesh_name_rule(seed_request: Body, name: str, problem: str) -> None:
    def mutate(body: Body) -> None:
        body["metadata"]["name"] = name

    loc, message = _refusal(seed_request, mutate)
    assert loc == "metadata.name"
    assert problem in message


@pytest.mark.parametrize("name", ["abcd", "a" * 64, "a-1-b", "mesh-test-api", "a--b"])
def test_mesh_name_accepted(name: str) -> None:
    assert MeshMetadata(name=name).name == name


RULES: list[tuple[str, Callable[[Body], None], str, str]] = [
    ("apiVersion", lambda b: b.update(apiVersion="v2"), "apiVersion", "'v1'"),
    ("kind", lambda b: b.update(kind="MeshList"), "kind", "'Mesh' or 'mesh'"),
    ("type", lambda b: b["spec"].update(type="Standard"), "spec.type", "'InCluster'"),
    (
        "operator",
        lambda b: _cluster(b)["installation"]["nodes"]["fieldSelector"].update(operator="NotIn"),
        "spec.extendParams.clusters.0.installation.nodes.fieldSelector.operator",
        "'In'",
    ),
    (
        "nodes",
        lambda b: _cluster(b)["installation"].pop("nodes"),
        "spec.extendParams.clusters.0.installation.nodes",
        "Field required",
    ),
    (
        "installation",
        lambda b: _cluster(b).pop("installation"),
        "spec.extendParams.clusters.0.installation",
        "Field required",
    ),
    (
        "selector values",
        lambda b: _cluster(b)["injection"]["namespaces"]["fieldSelector"].update(values=[]),
        "spec.extendParams.clusters.0.injection.namespaces.fieldSelector.values",
        "at least 1",
    ),
    (
        "clusters",
        lambda b: b["spec"]["extendParams"].update(clusters=[]),
        "spec.extendParams.clusters",
        "at least 1",
    ),
    (
        "duplicate cluster",
        lambda b: b["spec"]["extendParams"]["clusters"].append(copy.deepcopy(_cluster(b))),
        "spec.extendParams.clusters",
        "named twice",
    ),
    (
        "defaultProviders",
        lambda b: _tracing(b).update(defaultProviders=["jaeger"]),
        "spec.config.telemetryConfig.tracing",
        "defaultProviders names 'jaeger'",
    ),
    (
        "sampling above 100",
        lambda b: _tracing(b).update(randomSamplingPercentage=100.5),
        "spec.config.telemetryConfig.tracing.randomSamplingPercentage",
        "less than or equal to 100",
    ),
    (
        "sampling below 0",
        lambda b: _tracing(b).update(randomSamplingPercentage=-1),
        "spec.config.telemetryConfig.tracing.randomSamplingPercentage",
        "greater than or equal to 0",
    ),
    (
        "zipkin port 0",
        lambda b: _tracing(b)["extensionProviders"][0]["zipkin"].update(port=0),
        "spec.config.telemetryConfig.tracing.extensionProviders.0.zipkin.port",
        "greater than or equal to 1",
    ),
    (
        "zipkin port 65536",
        lambda b: _tracing(b)["extensionProviders"][0]["zipkin"].update(port=65536),
        "spec.config.telemetryConfig.tracing.extensionProviders.0.zipkin.port",
        "less than or equal to 65535",
    ),
    ("version shape", lambda b: b["spec"].update(version="1.18.7"), "spec.version", "1.18.7-r5"),
    ("version suffix", lambda b: b["spec"].update(version="1.18.7-r5\n"), "spec.version", ""),
    ("version line", lambda b: b["spec"].update(version="1.3.0-r2"), "spec.version", "1.3"),
    (
        "zipkin before 1.15",
        lambda b: b["spec"].update(version="1.13.9-r1"),
        "spec",
        "Zipkin provider needs mesh version 1.15",
    ),
    (
        "apm-otel on 1.15",
        _apm_otel_on_115,
        "spec",
        "later than 1.18",
    ),
    ("unknown field", lambda b: b["spec"].update(extendParam={}), "spec.extendParam", "Extra"),
    ("metadata missing", lambda b: b.pop("metadata"), "metadata", "Field required"),
]


@pytest.mark.parametrize(
    ("mutate", "loc", "text"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_seed_rule_refused_naming_the_field(
    seed_request: Body, mutate: Callable[[Body], None], loc: str, text: str
) -> None:
    got_loc, message = _refusal(seed_request, mutate)
    assert got_loc == loc
    # The message a user sees names the field (pydantic prints the dotted location).
    assert loc in message
    assert text in message


def test_apm_otel_needs_no_extension_provider_on_1_18(seed_request: Body) -> None:
    _tracing(seed_request).update(defaultProviders=["apm-otel"], extensionProviders=[])
    assert CreateMeshRequest.model_validate(seed_request).spec.version == "1.18.7-r5"


def test_lower_case_kind_and_15_line_are_accepted(seed_request: Body) -> None:
    seed_request["kind"] = "mesh"
    seed_request["spec"]["version"] = "1.15.7-r3"
    assert CreateMeshRequest.model_validate(seed_request).kind == "mesh"


@pytest.mark.parametrize(
    ("version", "line"),
    [("1.18.7-r5", (1, 18)), ("1.15.7-r3", (1, 15)), ("1.18", None), ("1.18.7-r5 ", None)],
)
def test_version_tuple(version: str, line: tuple[int, int] | None) -> None:
    assert version_tuple(version) == line


def test_non_ascii_digits_are_not_a_version() -> None:
    assert version_tuple("\u0661.\u0661\u0668.7-r5") is None


# --- properties ----------------------------------------------------------------------------

VALID_NAME = st.from_regex(re.compile(r"[a-z][a-z0-9-]{2,62}[a-z0-9]"), fullmatch=True)
ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@PROPERTY
@given(VALID_NAME)
def test_property_valid_names_are_accepted(name: str) -> None:
    assert mesh_name_problem(name) is None
    assert MeshMetadata(name=name).name == name


@PROPERTY
@given(VALID_NAME, st.characters().filter(lambda ch: ch not in ALLOWED), st.integers(0, 64))
def test_property_a_bad_character_is_refused(name: str, bad: str, where: int) -> None:
    where = min(where, len(name))
    candidate = name[:where] + bad + name[where:]
    assert mesh_name_problem(candidate) is not None
    with pytest.raises(ValidationError, match=r"\bname\b"):
        MeshMetadata(name=candidate)


@PROPERTY
@given(st.from_regex(re.compile(r"[a-z][a-z0-9]{0,2}"), fullmatch=True) | st.just(""))
def test_property_too_short_is_refused(name: str) -> None:
    assert mesh_name_problem(name) == f"must be 4 to 64 characters, got {len(name)}"


@PROPERTY
@given(st.text(alphabet=sorted(ALLOWED), min_size=63, max_size=120).map(lambda mid: f"a{mid}z"))
def test_property_too_long_is_refused(name: str) -> None:
    assert mesh_name_problem(name) == f"must be 4 to 64 characters, got {len(name)}"


@PROPERTY
@given(VALID_NAME)
def test_property_trailing_dash_is_refused(name: str) -> None:
    assert mesh_name_problem(name[:-1] + "-") == "must not end with '-'"


@PROPERTY
@given(
    st.text(min_size=1, max_size=20),
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5),
)
def test_property_selectors_round_trip(key: str, values: list[str]) -> None:
    selector = Selector.by(key, values)
    wire = selector.to_wire()
    assert wire == {"fieldSelector": {"key": key, "operator": "In", "values": values}}
    assert Selector.model_validate(wire) == selector


@PROPERTY
@given(st.text(max_size=10).filter(lambda op: op != "In"))
def test_property_selector_operator_other_than_in_is_refused(operator: str) -> None:
    with pytest.raises(ValidationError) as info:
        FieldSelector.model_validate({"key": "UID", "operator": operator, "values": ["n"]})
    assert [e["loc"] for e in info.value.errors()] == [("operator",)]


@PROPERTY
@given(st.lists(st.just(""), min_size=0, max_size=3))
def test_property_selector_needs_non_empty_values(values: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        FieldSelector.model_validate({"key": "UID", "operator": "In", "values": values})
    assert all(e["loc"][0] == "values" for e in info.value.errors())
