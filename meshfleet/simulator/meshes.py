"""The ASM mesh API: ``/v1/{project_id}/meshes`` create and list, ``/{mesh_id}`` show and delete,
and ``PUT /v2/projects/{project_id}/meshes/{mesh_id}`` update."""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import ValidationError

from meshfleet.asm.models import CreateMeshRequest, UpdateMeshRequest
from meshfleet.asm.rules import MESH_ID, PROJECT_ID
from meshfleet.simulator import faults
from meshfleet.simulator.auth import authentication_problem
from meshfleet.simulator.context import state_of
from meshfleet.simulator.responses import (
    ALREADY_EXISTS,
    AUTH_FAILED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MESH_NOT_RUNNING,
    NOT_FOUND,
    RESOURCE_LOCKED,
    error,
    json_response,
)
from meshfleet.simulator.state import MeshConflictError, MeshNotRunningError, SimulatorState
from meshfleet.simulator.validation import describe


async def admit(
    request: web.Request, body: bytes = b""
) -> tuple[SimulatorState, str] | web.Response:
    """Latency, then authentication, then the project id: the gateway's order of refusals."""
    state = state_of(request)
    await faults.add_latency(state)
    project_id = request.match_info["project_id"]
    problem = authentication_problem(state, request, project_id, body)
    if problem is not None:
        return error(401, AUTH_FAILED, problem)
    if not PROJECT_ID.matches(project_id):
        # The rule without the value: whatever was in the path stays out of the answer.
        return error(400, INVALID_REQUEST, f"{PROJECT_ID.field} {PROJECT_ID.message}")
    return state, project_id


def _not_found(mesh_id: str) -> web.Response:
    # Echo the id only when it has the shape of one; anything else stays out of the answer.
    shown = f"mesh {mesh_id}" if MESH_ID.matches(mesh_id) else "the mesh"
    return error(404, NOT_FOUND, f"{shown} does not exist in this project")


def throttled(state: SimulatorState) -> web.Response:
    retry_after = state.faults.retry_after
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return error(
        429, RESOURCE_LOCKED, "the resource is locked by another request, retry later", headers
    )


async def create_mesh(request: web.Request) -> web.Response:
    """``POST /v1/{project_id}/meshes``: 201 with the mesh in ``Creating``."""
    body = await request.read()
    admitted = await admit(request, body)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    try:
        data = json.loads(body)
    except ValueError as exc:
        return error(400, INVALID_REQUEST, f"request body is not valid JSON: {exc}")
    try:
        mesh_request = CreateMeshRequest.model_validate(data)
    except ValidationError as exc:
        return error(400, INVALID_REQUEST, describe(exc))

    name = mesh_request.metadata.name
    state.stats.name(project_id, name).posts += 1
    if faults.throttle(state, project_id, name):
        return throttled(state)
    if faults.fail_before_create(state, project_id, name):
        return error(500, INTERNAL_ERROR, "internal error")
    clusters = [c.cluster_id for c in mesh_request.spec.extend_params.clusters]
    conflict = state.conflict(project_id, name, clusters)
    if conflict is not None:
        return error(409, ALREADY_EXISTS, conflict)
    fails = faults.ends_create_failed(state, project_id, name)
    try:
        record = state.create_mesh(project_id, mesh_request, fails=fails)
    except MeshConflictError as exc:
        return error(409, ALREADY_EXISTS, str(exc))
    if faults.fail_after_create(state, project_id, name):
        return error(500, INTERNAL_ERROR, "internal error")
    return json_response(state.mesh_json(record, created=True), 201)


async def list_meshes(request: web.Request) -> web.Response:
    """``GET /v1/{project_id}/meshes``: every mesh of the project, no filter, no paging."""
    admitted = await admit(request)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    items = [state.mesh_json(record) for record in state.list_meshes(project_id)]
    return json_response({"apiVersion": "v1", "kind": "MeshList", "items": items})


async def show_mesh(request: web.Request) -> web.Response:
    """``GET /v1/{project_id}/meshes/{mesh_id}``: the mesh, or 404 once it is gone."""
    admitted = await admit(request)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    mesh_id = request.match_info["mesh_id"]
    record = state.get_mesh(project_id, mesh_id)
    if record is None:
        return _not_found(mesh_id)
    return json_response(state.mesh_json(record))


async def delete_mesh(request: web.Request) -> web.Response:
    """``DELETE /v1/{project_id}/meshes/{mesh_id}``: 200 with the mesh in ``Deleting``."""
    admitted = await admit(request)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    mesh_id = request.match_info["mesh_id"]
    found = state.get_mesh(project_id, mesh_id)
    if found is None:
        return _not_found(mesh_id)
    if faults.throttle(state, project_id):
        return throttled(state)
    state.stats.deletes_by_uid[mesh_id] += 1
    fails = faults.ends_delete_failed(state, project_id, found.name, mesh_id)
    record = state.delete_mesh(project_id, mesh_id, fails=fails)
    if record is None:
        return _not_found(mesh_id)
    return json_response(state.mesh_json(record))


async def update_mesh(request: web.Request) -> web.Response:
    """``PUT /v2/projects/{project_id}/meshes/{mesh_id}``: 200 when the new configuration is
    accepted; the mesh stays ``Running`` and echoes it after ``update_seconds``."""
    body = await request.read()
    admitted = await admit(request, body)
    if isinstance(admitted, web.Response):
        return admitted
    state, project_id = admitted
    mesh_id = request.match_info["mesh_id"]
    found = state.get_mesh(project_id, mesh_id)
    if found is None:
        return _not_found(mesh_id)
    try:
        data = json.loads(body)
    except ValueError as exc:
        return error(400, INVALID_REQUEST, f"request body is not valid JSON: {exc}")
    if isinstance(data, dict) and "action" not in data:
        # The client's model fills the action in; on the wire it is mandatory all the same.
        return error(400, INVALID_REQUEST, "action: Field required")
    try:
        update = UpdateMeshRequest.model_validate(data)
    except ValidationError as exc:
        return error(400, INVALID_REQUEST, describe(exc))

    state.stats.updates_by_uid[mesh_id] += 1
    if faults.throttle(state, project_id):
        return throttled(state)
    if faults.fail_update(state, found.name, mesh_id):
        return error(500, INTERNAL_ERROR, "internal error")
    busy = state.not_running(found)
    if busy is not None:
        return error(409, MESH_NOT_RUNNING, busy)
    fails = faults.ends_update_failed(state, found.name, mesh_id)
    try:
        slow = faults.slows_update(state, found.name, mesh_id)
        record = state.update_mesh(
            project_id,
            mesh_id,
            update.mesh_config.to_wire(),
            fails=fails,
            seconds=state.faults.slow_update_seconds if slow else None,
        )
    except MeshNotRunningError as exc:
        return error(409, MESH_NOT_RUNNING, str(exc))
    if record is None:
        return _not_found(mesh_id)
    if faults.loses_update_answer(state, found.name, mesh_id):
        return error(500, INTERNAL_ERROR, "internal error")
    return json_response(state.mesh_json(record))
