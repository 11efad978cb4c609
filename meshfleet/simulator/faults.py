"""Decisions to inject a fault: seeded probabilities and per-name rules, counted in the stats."""

from __future__ import annotations

import asyncio

from meshfleet.asm.upgrade import UpgradeStep, line_of
from meshfleet.simulator.config import FaultAction
from meshfleet.simulator.state import SimulatorState

# Stats keys of the injected faults.
LATENCY = "latency"


def _chance(state: SimulatorState, probability: float) -> bool:
    # No draw at probability 0: turning one fault on must not shift the others' sequences.
    return probability > 0 and state.rng.random() < probability


def _rule_hits(state: SimulatorState, action: FaultAction, project_id: str, name: str) -> bool:
    # ``times`` counts the creates of this (project, name) so far, the current one included.
    posts = state.stats.posts(project_id, name)
    return any(
        rule.times is None or posts <= rule.times for rule in state.faults.rules_for(name, action)
    )


def _inject(
    state: SimulatorState,
    action: FaultAction,
    probability: float,
    project_id: str,
    name: str | None,
) -> bool:
    # Rules come first and are not drawn for; rules need a name, which deletes do not have.
    by_rule = name is not None and _rule_hits(state, action, project_id, name)
    if by_rule or _chance(state, probability):
        state.stats.faults[action.value] += 1
        return True
    return False


async def add_latency(state: SimulatorState) -> None:
    """Sleep the configured latency plus a uniformly drawn jitter, if any is configured."""
    faults = state.faults
    delay = faults.latency
    if faults.latency_jitter > 0:
        delay += state.rng.uniform(0, faults.latency_jitter)
    if delay > 0:
        state.stats.faults[LATENCY] += 1
        await asyncio.sleep(delay)


def throttle(state: SimulatorState, project_id: str, name: str | None = None) -> bool:
    """Whether to answer 429 ASM.01429001 to a create (with its mesh name), an update or a
    delete."""
    return _inject(state, FaultAction.FAIL_429, state.faults.fail_429, project_id, name)


def fail_before_create(state: SimulatorState, project_id: str, name: str) -> bool:
    """Whether to answer 500 before anything is created."""
    return _inject(
        state, FaultAction.FAIL_500_BEFORE, state.faults.fail_500_before, project_id, name
    )


def fail_after_create(state: SimulatorState, project_id: str, name: str) -> bool:
    """Whether to answer 500 although the mesh was just created."""
    return _inject(state, FaultAction.FAIL_500_AFTER, state.faults.fail_500_after, project_id, name)


def ends_create_failed(state: SimulatorState, project_id: str, name: str) -> bool:
    """Whether a mesh being created will end ``CreateFailed``."""
    return _inject(state, FaultAction.CREATE_FAILED, state.faults.create_failed, project_id, name)


def _mesh_rule_hits(state: SimulatorState, action: FaultAction, name: str, count: int) -> bool:
    # ``count``: the requests of this one mesh so far, the current one included.
    hit = any(
        rule.times is None or count <= rule.times for rule in state.faults.rules_for(name, action)
    )
    if hit:
        state.stats.faults[action.value] += 1
    return hit


def ends_delete_failed(state: SimulatorState, project_id: str, name: str, uid: str) -> bool:
    """Whether this DELETE of mesh ``uid`` will end ``DeleteFailed`` (``times`` counts the
    DELETEs of that mesh so far, this one included)."""
    return _mesh_rule_hits(state, FaultAction.DELETE_FAILED, name, state.stats.deletes(uid))


def fail_update(state: SimulatorState, name: str, uid: str) -> bool:
    """Whether to answer 500 to this PUT of mesh ``uid`` without changing anything (``times``
    counts the PUTs of that mesh so far, this one included)."""
    return _mesh_rule_hits(state, FaultAction.UPDATE_500, name, state.stats.updates(uid))


def slows_update(state: SimulatorState, name: str, uid: str) -> bool:
    """Whether this PUT of mesh ``uid`` takes ``slow_update_seconds`` to be echoed (``times``
    counts the PUTs of that mesh so far, this one included)."""
    return _mesh_rule_hits(state, FaultAction.UPDATE_SLOW, name, state.stats.updates(uid))


def loses_update_answer(state: SimulatorState, name: str, uid: str) -> bool:
    """Whether this PUT of mesh ``uid`` takes but is answered 500 (``times`` counts the PUTs
    of that mesh so far, this one included)."""
    return _mesh_rule_hits(state, FaultAction.UPDATE_LOST, name, state.stats.updates(uid))


def ends_update_failed(state: SimulatorState, name: str, uid: str) -> bool:
    """Whether this accepted PUT of mesh ``uid`` will never take effect (``times`` counts the
    PUTs of that mesh so far, this one included)."""
    return _mesh_rule_hits(state, FaultAction.UPDATE_FAILED, name, state.stats.updates(uid))


def _line(version: str) -> str:
    line = line_of(version)
    return f"{line[0]}.{line[1]}" if line is not None else version


def upgrade_step_failure(
    state: SimulatorState,
    mesh_name: str,
    ordinal: int,
    step: UpgradeStep,
    from_version: str,
    target_version: str,
) -> str | None:
    """The message ``step`` of an upgrade task will end ``Failed`` with, or None when it will
    succeed (``times`` counts the upgrade tasks of that mesh; ``ordinal`` is this task's)."""
    if step is UpgradeStep.PRE_CHECK and _mesh_rule_hits(
        state, FaultAction.UPGRADE_PRECHECK_FAILED, mesh_name, ordinal
    ):
        return (
            "pre-upgrade check failed: cluster version 1.23 is not supported by mesh version "
            f"{_line(target_version)}"
        )
    if step is UpgradeStep.DATA_PLANE and _mesh_rule_hits(
        state, FaultAction.UPGRADE_DATAPLANE_FAILED, mesh_name, ordinal
    ):
        return (
            f"data plane upgrade failed: pods with the {target_version} sidecar did not become "
            "ready in namespace default"
        )
    if step is UpgradeStep.ROLLBACK and _mesh_rule_hits(
        state, FaultAction.UPGRADE_ROLLBACK_FAILED, mesh_name, ordinal
    ):
        return f"rollback failed: the control plane of {from_version} did not become ready again"
    return None


def slows_upgrade(state: SimulatorState, mesh_name: str, ordinal: int) -> bool:
    """Whether the POST that created task number ``ordinal`` of the mesh answers only after
    ``slow_upgrade_seconds``."""
    return _mesh_rule_hits(state, FaultAction.UPGRADE_SLOW, mesh_name, ordinal)


def loses_upgrade_answer(state: SimulatorState, mesh_name: str, ordinal: int) -> bool:
    """Whether the POST that created task number ``ordinal`` of the mesh is answered 500."""
    return _mesh_rule_hits(state, FaultAction.UPGRADE_LOST, mesh_name, ordinal)
