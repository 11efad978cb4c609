"""ASM's canary upgrade task: ``POST /v1/{project_id}/mesh-upgrade`` creates one,
``GET|PUT /v1/{project_id}/mesh-upgrade/{task_id}`` shows it or starts a step, and
``GET /v1/{project_id}/mesh-job/{job_id}`` shows the job behind a step.

The values of the body and of the task's status are the ones ``meshfleet.asm.upgrade`` assumes;
the refusals come in the gateway's order (latency, authentication, project id), then the body,
then what stands in the way.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from meshfleet.asm.models import MeshPhase
from meshfleet.asm.rules import MESH_ID, UPGRADE_JOB_ID, UPGRADE_TASK_ID, shown
from meshfleet.asm.upgrade import (
    TARGET_TYPE,
    UPGRADE_STRATEGY,
    UpgradeStep,
    UpgradeTaskRequest,
)
from meshfleet.simulator import faults
from meshfleet.simulator.meshes import admit, throttled
from meshfleet.simulator.responses import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MESH_NOT_RUNNING,
    NOT_FOUND,
    UPGRADE_CONFLICT,
    error,
    json_response,
)
from meshfleet.simulator.state import SimulatorState
from meshfleet.simulator.upgrade_state import UpgradeRecord, off_path
from meshfleet.simulator.validation import describe

# Fields the client's model fills in by default; on the wire they are mandatory all the same.
_DEFAULTED = (("kind",), ("apiVersion",), ("spec", "upgradeStrategy"), ("spec", "targetType"))


def _missing(data: dict[str, Any]) -> list[str]:
    problems = []
    for path in _DEFAULTED:
        parent: Any = data
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] not in parent:
            problems.append(f"{'.'.join(path)}: Field required")
    return problems


def _parse(body: bytes) -> tuple[UpgradeTaskRequest, dict[str, Any]] | web.Response:
    """The body as the request model and as sent, or the 400 that names what is wrong."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        return error(400, INVALID_REQUEST, f"request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return error(400, INVALID_REQUEST, "request body must be a JSON object")
    missing = _missing(data)
    if missing:
        return error(400, INVALID_REQUEST, "; ".join(missing))
    try:
        parsed = UpgradeTaskRequest.model_validate(data)
    except ValidationError as exc:
        return error(400, INVALID_REQUEST, describe(exc))
    spec = parsed.spec
    problems = []
    if not parsed.metadata.name.strip():
        problems.append("metadata.name: must not be empty")
    if not MESH_ID.matches(spec.mesh_id):
        problems.append(f"spec.meshId: {MESH_ID.message}")
    if spec.upgrade_strategy != UPGRADE_STRATEGY:
        sent = shown(spec.upgrade_strategy)
        problems.append(f"spec.upgradeStrategy: must be {UPGRADE_STRATEGY!r}, not {sent}")
    if spec.target_type != TARGET_TYPE:
        problems.append(f"spec.targetType: must be {TARGET_TYPE!r}, not {shown(spec.target_type)}")
    if not spec.target_version.strip():
        problems.append("spec.targetVersion: must not be empty")
    if problems:
        return error(400, INVALID_REQUEST, "; ".join(problems))
    return parsed, data


def _task_of(
    request: web.Request, state: SimulatorState, project_id: str
) -> UpgradeRecord | web.Response:
    """The task the path names, or the 404 that says it is not in this project."""
    task_id = request.match_info["task_id"]
    task = state.get_upgrade(project_id, task_id)
    if task is not None:
        return task
    # Echo the id only when it has the shape of one, as for meshes.
    named = f"upgrade task {task_id}" if UPGRADE_TASK_ID.matches(task_id) else "the upgrade task"
    return error(404, NOT_FOUND, f"{named} does not exist in this project")


def _mesh_not_found(mesh_id: str) -> web.Response:
    return error(404, NOT_FOUND, f"mesh {mesh_id} does not exist in this project")


async def create_upgrade(request: web.Request) -> web.Response:
    """``POST /v1/{project_id}/mesh-upgrade``: 201 with the task at ``preCheck``, ``Running``."""
    body = await request.read()
    admitted = await admit(request, body)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    parsed = _parse(body)
    if isinstance(parsed, web.Response):
        return parsed
    upgrade, data = parsed
    spec = upgrade.spec
    if spec.current_step.name is not UpgradeStep.PRE_CHECK:
        return error(
            400,
            INVALID_REQUEST,
            f"spec.currentStep.name: a new upgrade task starts with {UpgradeStep.PRE_CHECK}, "
            f"not {spec.current_step.name}",
        )
    mesh = state.get_mesh(project_id, spec.mesh_id)
    if mesh is None:
        return _mesh_not_found(spec.mesh_id)

    state.stats.upgrade_posts_by_uid[mesh.uid] += 1
    if faults.throttle(state, project_id):
        return throttled(state)
    now = state.now()
    holder = mesh.open_upgrade(now)
    if holder is not None:
        return error(
            409,
            UPGRADE_CONFLICT,
            f"mesh {mesh.uid} already has upgrade task {holder.uid} (step {holder.current.step}, "
            f"{holder.current.phase(now)}); one upgrade task per mesh at a time",
        )
    phase = mesh.phase(now)
    if phase != MeshPhase.RUNNING:
        return error(
            409, MESH_NOT_RUNNING, f"mesh {mesh.uid} is {phase}; only a Running mesh can upgrade"
        )
    from_version = str(mesh.spec_at(now).get("version") or "")
    problem = off_path(from_version, spec.target_version)
    if problem is not None:
        return error(400, INVALID_REQUEST, f"spec.targetVersion: {problem}")

    ordinal = state.next_upgrade_ordinal(mesh.uid)
    failure = faults.upgrade_step_failure(
        state, mesh.name, ordinal, UpgradeStep.PRE_CHECK, from_version, spec.target_version
    )
    task = state.create_upgrade(
        mesh, upgrade.metadata.name, dict(data["spec"]), spec.target_version, failure=failure
    )
    answer = state.upgrade_json(task, created=True)
    if faults.slows_upgrade(state, mesh.name, task.ordinal):
        # The task exists from now on, whoever waits for this answer.
        await asyncio.sleep(state.faults.slow_upgrade_seconds)
    if faults.loses_upgrade_answer(state, mesh.name, task.ordinal):
        return error(500, INTERNAL_ERROR, "internal error")
    return json_response(answer, 201)


async def show_upgrade(request: web.Request) -> web.Response:
    """``GET /v1/{project_id}/mesh-upgrade/{task_id}``: the task now, or 404."""
    admitted = await admit(request)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    task = _task_of(request, state, project_id)
    if isinstance(task, web.Response):
        return task
    return json_response(state.upgrade_json(task))


async def move_upgrade(request: web.Request) -> web.Response:
    """``PUT /v1/{project_id}/mesh-upgrade/{task_id}``: start the step ``currentStep.name``
    names; 200 also when that step is the one the task is at (a retry changes nothing)."""
    body = await request.read()
    admitted = await admit(request, body)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    task = _task_of(request, state, project_id)
    if isinstance(task, web.Response):
        return task
    parsed = _parse(body)
    if isinstance(parsed, web.Response):
        return parsed
    upgrade, data = parsed
    spec = upgrade.spec
    mismatch = []
    if spec.mesh_id != task.mesh_uid:
        mismatch.append(f"spec.meshId: upgrade task {task.uid} is for mesh {task.mesh_uid}")
    if spec.target_version != task.target_version:
        mismatch.append(
            f"spec.targetVersion: upgrade task {task.uid} upgrades to {task.target_version}"
        )
    if mismatch:
        return error(400, INVALID_REQUEST, "; ".join(mismatch))

    step = spec.current_step.name
    state.stats.upgrade_puts_by_step[(task.mesh_uid, str(step))] += 1
    if faults.throttle(state, project_id):
        return throttled(state)
    mesh = state.mesh_of_upgrade(task)
    if mesh is None:
        return _mesh_not_found(task.mesh_uid)
    now = state.now()
    mesh.open_upgrade(now)  # a task that has just closed lets go of its mesh first
    if task.repeats(step, now):
        return json_response(state.upgrade_json(task))
    refusal = task.refusal(step, now)
    if refusal is not None:
        return error(409, UPGRADE_CONFLICT, refusal)
    failure = faults.upgrade_step_failure(
        state, mesh.name, task.ordinal, step, task.from_version, task.target_version
    )
    state.move_upgrade(task, step, dict(data["spec"]), failure=failure)
    return json_response(state.upgrade_json(task))


async def show_upgrade_job(request: web.Request) -> web.Response:
    """``GET /v1/{project_id}/mesh-job/{job_id}``: the job of one step a task ran, or 404."""
    admitted = await admit(request)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    job_id = request.match_info["job_id"]
    found = state.get_upgrade_job(project_id, job_id)
    if found is None:
        named = f"job {job_id}" if UPGRADE_JOB_ID.matches(job_id) else "the job"
        return error(404, NOT_FOUND, f"{named} does not exist in this project")
    task, run = found
    return json_response(state.upgrade_job_json(task, run))
