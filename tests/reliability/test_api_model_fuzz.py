"""Scenario 6c: junk in and out of the ASM API models: every failure is the library's own error.

Requests are refused with ``ValidationError`` naming the field (the simulator answers 400 with it);
responses that are not what the seed describes become ``AsmError``, never a ``KeyError`` or a
``TypeError`` in an activity; error answers of any shape become an ``AsmStatusError`` of their
status; ids are accepted only when they are safe in a URL path as they are.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from meshfleet.asm.client import parse_body
from meshfleet.asm.errors import (
    MAX_RETRY_AFTER_S,
    AsmError,
    AsmStatusError,
    AsmValidationError,
    error_from_response,
)
from meshfleet.asm.models import CreateMeshRequest, Mesh, MeshList
from meshfleet.asm.rules import check_mesh_id, check_project_id

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["v1", "Mesh", "InCluster", "1.18.7-r5", "In", "UID", "Running", ""])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "apiVersion",
                    "kind",
                    "metadata",
                    "name",
                    "uid",
                    "spec",
                    "status",
                    "phase",
                    "extendParams",
                    "clusters",
                    "clusterID",
                    "items",
                    "installation",
                    "nodes",
                    "fieldSelector",
                    "key",
                    "operator",
                    "values",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)

_VALID_REQUEST: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Mesh",
    "metadata": {"name": "mesh-fuzz"},
    "spec": {
        "type": "InCluster",
        "version": "1.18.7-r5",
        "extendParams": {
            "clusters": [
                {
                    "clusterID": "cluster-fuzz",
                    "installation": {
                        "nodes": {
                            "fieldSelector": {"key": "UID", "operator": "In", "values": ["n-1"]}
                        }
                    },
                }
            ]
        },
    },
}
_PATHS = [
    ("apiVersion",),
    ("kind",),
    ("metadata", "name"),
    ("spec", "type"),
    ("spec", "version"),
    ("spec", "extendParams", "clusters"),
    ("spec", "extendParams", "clusters", 0, "clusterID"),
    ("spec", "extendParams", "clusters", 0, "installation", "nodes", "fieldSelector", "operator"),
    ("spec", "extendParams", "clusters", 0, "installation", "nodes", "fieldSelector", "values"),
    ("spec", "config"),
]


@_FUZZ
@given(_json)
def test_any_json_is_a_create_request_or_a_validation_error(body: Any) -> None:
    try:
        request = CreateMeshRequest.model_validate(body)
    except ValidationError as exc:
        assert exc.errors()
    else:
        # Whatever was accepted goes back on the wire as the same request.
        assert CreateMeshRequest.model_validate(request.to_wire()) == request


@_FUZZ
@given(st.sampled_from(_PATHS), _json)
def test_one_bad_field_of_a_create_request_is_named(
    path: tuple[str | int, ...], value: Any
) -> None:
    body = copy.deepcopy(_VALID_REQUEST)
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    try:
        CreateMeshRequest.model_validate(body)
    except ValidationError as exc:
        # Each error points at the field that was changed (or inside it).
        for error in exc.errors():
            loc = tuple(str(p) for p in error["loc"])
            wanted = tuple(str(p) for p in path)
            assert loc[: len(wanted)] == wanted or wanted[: len(loc)] == loc, (loc, wanted)


@_FUZZ
@given(_json)
def test_any_response_body_is_a_mesh_or_an_asm_error(body: Any) -> None:
    for parse in (
        lambda: parse_body(Mesh, body, "fuzz"),
        lambda: parse_body(MeshList, body, "fuzz"),
    ):
        try:
            parsed = parse()
        except AsmError as exc:
            assert not isinstance(exc, AsmStatusError)
            assert str(exc).startswith("fuzz: unexpected response body")
        else:
            assert isinstance(parsed, Mesh | MeshList)


@_FUZZ
@given(
    st.integers(min_value=400, max_value=599),
    st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["X-Request-Id", "Retry-After", "Content-Type"]),
        st.text(max_size=40) | st.sampled_from(["inf", "nan", "-5", "1e9", "Wed, 21 Oct 2099"]),
    ),
)
def test_any_error_answer_is_a_status_error(
    status: int, raw: bytes, headers: dict[str, str]
) -> None:
    error = error_from_response(status, headers, raw, "Reason")
    assert isinstance(error, AsmStatusError)
    assert error.status == status
    assert error.error_msg  # never an empty explanation
    assert error.request_id == (headers.get("X-Request-Id") or error.request_id)
    if error.retry_after is not None:
        assert math.isfinite(error.retry_after)
        assert 0 <= error.retry_after <= MAX_RETRY_AFTER_S


def _path_safe(value: str, alphabet: str) -> bool:
    return bool(value) and all(ch in alphabet for ch in value) and quote(value, safe="") == value


@_FUZZ
@given(
    st.text(max_size=40)
    | st.text(alphabet="0123456789abcdefABCDEF./%\uff0f\x00\n", min_size=30, max_size=34)
)
def test_an_id_is_accepted_only_when_it_is_safe_in_a_path(value: str) -> None:
    for check, field, alphabet in (
        (check_project_id, "project_id", "0123456789abcdef"),
        (
            check_mesh_id,
            "mesh_id",
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-",
        ),
    ):
        try:
            assert check(value) == value
        except AsmValidationError as exc:
            assert str(exc).startswith(field)
            assert len(str(exc)) < 200  # the value is shown cut short, never whole
        else:
            assert _path_safe(value, alphabet), value
            assert value not in {".", ".."}
