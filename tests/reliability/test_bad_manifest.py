"""Scenario 6a: junk manifests through the ``meshfleet`` CLI: exit 2 and a message naming what is
wrong, never a traceback, never a started rollout; oversize manifests refused with a message.

``tests/test_manifest.py`` fuzzes the loader as a library; here the whole command is under test.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet.manifest.load import MAX_TARGETS, ManifestError, load_manifest
from meshfleet.manifest.source import MAX_BYTES
from tests.helpers.cli_invoke import TRACEBACK, Outcome, invoke, meshfleet_process, problem_lines
from tests.helpers.eventually import eventually
from tests.helpers.processes import clean_env

P0, P1 = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
NAMES = ("mesh-alpha", "mesh-bravo")
CLUSTERS = ("cluster-a-0001", "cluster-b-0002")


def valid_manifest() -> dict[str, Any]:
    """Two targets in two projects, every strategy key set."""
    return {
        "strategy": {
            "window": 4,
            "waves": [1, "100%"],
            "max_failures": 1,
            "first_poll": "1s",
            "poll_interval": "2s",
            "timeout": "5m",
        },
        "defaults": {"region": "ap-southeast-3", "version": "1.18.7-r5"},
        "targets": [
            {
                "project_id": project,
                "cluster_id": cluster,
                "mesh_name": name,
                "node_ids": [f"node-{name}"],
            }
            for project, cluster, name in zip((P0, P1), CLUSTERS, NAMES, strict=True)
        ],
    }


INJECTIONS = [
    "../../../v1/other",
    "%2e%2e%2f%2e%2e",
    "0123456789abcdef%2f23456789abcdef",
    "0123456789abcdef\uff0f23456789abcdef",  # fullwidth solidus
    "0123456789abcdef\x0023456789abcdef",  # NUL
    "0123456789abcdef0123456789abcde\uff46",  # fullwidth small f
    "0123456789abcdef0123456789abcd\u0435f",  # Cyrillic small ie
    "0123456789abcdef0123456789abcdef\n",
]

# Where a single bad value goes, and the path its problem must be reported at.
FIELDS: list[tuple[tuple[str | int, ...], str]] = [
    (("targets", 0, "project_id"), "targets[0].project_id"),
    (("targets", 1, "region"), "targets[1].region"),
    (("targets", 0, "cluster_id"), "targets[0].cluster_id"),
    (("targets", 1, "mesh_name"), "targets[1].mesh_name"),
    (("targets", 0, "version"), "targets[0].version"),
    (("targets", 1, "node_ids"), "targets[1].node_ids"),
    (("targets", 0, "ipv6"), "targets[0].ipv6"),
    (("defaults", "region"), "defaults.region"),
    (("strategy", "window"), "strategy.window"),
    (("strategy", "waves"), "strategy.waves"),
    (("strategy", "max_failures"), "strategy.max_failures"),
    (("strategy", "timeout"), "strategy.timeout"),
]

_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from([*INJECTIONS, "", " ", "1.18.7-r5", "ap-southeast-3", "100%", "0s"])
    | st.lists(st.text(max_size=6) | st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=6), st.integers(), max_size=2)
).filter(lambda v: v not in NAMES and v not in CLUSTERS)

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(directory: str, content: bytes) -> Path:
    path = Path(directory) / "fleet.yaml"
    path.write_bytes(content)
    return path


def _check_like_the_library(path: Path, outcome: Outcome) -> list[str]:
    """The CLI agrees with ``load_manifest``; problems come out as lines, never a traceback."""
    assert outcome.crashed is None, repr(outcome.crashed)
    assert TRACEBACK not in outcome.out + outcome.err
    try:
        load_manifest(path)
    except ManifestError as exc:
        assert outcome.code == 2, outcome
        problems = problem_lines(outcome, path)
        assert problems == exc.problems
        return problems
    assert outcome.code == 0, outcome
    assert outcome.out.startswith(f"{path}: valid: ")
    return []


@_FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_any_bytes_through_validate(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, content)
        _check_like_the_library(path, invoke("validate", str(path)))


@_FUZZ
@given(st.sampled_from(FIELDS), _values, st.booleans())
def test_fuzz_one_bad_field_is_named_by_validate(
    field: tuple[tuple[str | int, ...], str], value: Any, as_yaml: bool
) -> None:
    where, path_name = field
    doc = valid_manifest()
    node: Any = doc
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    text = yaml.safe_dump(doc) if as_yaml else json.dumps(doc)
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, text.encode())
        problems = _check_like_the_library(path, invoke("validate", str(path)))
    if problems:
        # The bad value is named where it was written, not somewhere else.
        assert any(p.startswith(path_name) for p in problems), problems


JUNK: dict[str, bytes] = {
    "not-utf8": b"\xff\xfe\x00targets: []",
    "empty": b"",
    "self-alias": b"a: &a [*a]\n",
    "alias-bomb": "\n".join(
        ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    ).encode(),
    "deep": b"[" * 5000 + b"]" * 5000,
    "huge-number": b"targets: 1e999999\n",
    # {pwned} is replaced by a path in the test's directory: the file must never appear.
    "python-tag": b"targets: !!python/object/apply:os.system ['touch {pwned}']\n",
    "duplicate-keys": b"targets: []\ntargets: []\n",
    "injection": json.dumps(
        {"targets": [{**valid_manifest()["targets"][0], "project_id": INJECTIONS[0]}]}
    ).encode(),
    "nul-bytes": b"targets:\n  - project_id: \x00\x00\n",
}


async def test_junk_never_starts_a_rollout(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    env = clean_env(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        MESHFLEET_TASK_QUEUE=task_queue,
    )
    pwned = tmp_path / "pwned"
    paths = {}
    for name, content in JUNK.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_bytes(content.replace(b"{pwned}", str(pwned).encode()))
    runs = await asyncio.gather(
        *(meshfleet_process("start", str(p), env=env) for p in paths.values()),
        meshfleet_process("start", "-", env=env, stdin=b"#" * (MAX_BYTES + 1)),
    )
    for (name, path), outcome in zip(paths.items(), runs, strict=False):
        assert outcome.code == 2, (name, outcome)
        assert TRACEBACK not in outcome.err, (name, outcome.err)
        assert problem_lines(outcome, path), name
    oversize = runs[-1]
    assert problem_lines(oversize, "-")[-1].endswith("larger than 32 MiB; split the fleet")
    assert not await asyncio.to_thread(pwned.exists)

    await _only_the_control_starts(client, env, task_queue, tmp_path)


async def _only_the_control_starts(
    client: Client, env: dict[str, str], task_queue: str, tmp_path: Path
) -> None:
    """Start a valid manifest the same way: the query sees it, and nothing else started before."""
    valid = tmp_path / "valid.yaml"
    valid.write_text(yaml.safe_dump(valid_manifest()))
    rollout_id = f"control-{uuid.uuid4().hex[:8]}"
    started = await meshfleet_process("start", str(valid), "--rollout-id", rollout_id, env=env)
    assert started.code == 0, started
    query = f'TaskQueue = "{task_queue}"'
    try:

        async def control_visible() -> bool:
            return (await client.count_workflows(query)).count >= 1

        await eventually(control_visible, 10, f"{rollout_id} visible in {task_queue}", interval=0.1)
        # Visibility is written in order: the junk's starts would show by now.
        assert [w.id async for w in client.list_workflows(query)] == [f"rollout/{rollout_id}"]
    finally:
        await client.get_workflow_handle(f"rollout/{rollout_id}").terminate("test control")


def test_an_oversize_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "fleet.yaml"
    with big.open("wb") as out:
        out.truncate(MAX_BYTES + 1)  # sparse: refused by its size, before a byte is read
    outcome = invoke("validate", str(big))
    assert (outcome.code, outcome.crashed) == (2, None)
    [problem] = problem_lines(outcome, big)
    assert problem.endswith("larger than 32 MiB; split the fleet")


@pytest.mark.chaos
def test_too_many_targets_are_refused_with_a_message(tmp_path: Path) -> None:
    doc = valid_manifest()
    doc["targets"] = [
        {
            "project_id": P0,
            "cluster_id": f"cluster-{i:06d}",
            "mesh_name": f"mesh-{i:06d}",
            "node_ids": [f"node-{i:06d}"],
        }
        for i in range(MAX_TARGETS + 1)
    ]
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(doc))
    outcome = invoke("validate", str(path))
    assert (outcome.code, outcome.crashed) == (2, None)
    assert problem_lines(outcome, path) == [
        "targets: 20,001 targets; at most 20,000 per manifest, split the fleet into several "
        "rollouts"
    ]


def _collect_junk(count: int) -> list[bytes]:
    """``count`` manifests that the loader refuses: mutated fields and raw junk, as files."""
    found: list[bytes] = []

    @settings(max_examples=count * 3, deadline=None, database=None)
    @given(
        st.sampled_from(FIELDS).flatmap(lambda f: st.tuples(st.just(f), _values))
        | st.binary(max_size=200).map(lambda b: ((("raw",), "raw"), b))
    )
    def collect(case: tuple[tuple[tuple[str | int, ...], str], Any]) -> None:
        (where, _), value = case
        if where == ("raw",):
            content = bytes(value)
        else:
            doc = valid_manifest()
            node: Any = doc
            for step in where[:-1]:
                node = node[step]
            node[where[-1]] = value
            content = json.dumps(doc).encode()
        with tempfile.TemporaryDirectory() as directory:
            try:
                load_manifest(_write(directory, content))
            except ManifestError:
                if len(found) < count:
                    found.append(content)

    collect()
    return found


@pytest.mark.chaos
async def test_fuzzed_junk_through_the_real_process_never_starts_a_rollout(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    env = clean_env(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        MESHFLEET_TASK_QUEUE=task_queue,
    )
    junk = _collect_junk(80)
    assert len(junk) >= 60
    paths = []
    for n, content in enumerate(junk):
        paths.append(tmp_path / f"junk-{n}.yaml")
        paths[-1].write_bytes(content)
    for first in range(0, len(paths), 4):
        batch = paths[first : first + 4]
        runs = await asyncio.gather(*(meshfleet_process("start", str(p), env=env) for p in batch))
        for path, outcome in zip(batch, runs, strict=True):
            assert outcome.code == 2, (path.read_bytes(), outcome)
            assert TRACEBACK not in outcome.err
            assert problem_lines(outcome, path)
    await _only_the_control_starts(client, env, task_queue, tmp_path)
