"""``/_sim/*``: stats, reset, runtime faults, seeded meshes and upgrade tasks (no auth: a loopback
dev tool)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meshfleet.asm.models import MeshPhase
from meshfleet.asm.rules import MeshName, ProjectId
from meshfleet.simulator.context import state_of
from meshfleet.simulator.responses import ALREADY_EXISTS, INVALID_REQUEST, error, json_response
from meshfleet.simulator.state import DEFAULT_VERSION, MeshConflictError
from meshfleet.simulator.validation import describe


class SeedMeshRequest(BaseModel):
    """Body of ``POST /_sim/meshes``: a mesh that exists before any client creates it."""

    model_config = ConfigDict(extra="forbid")

    project_id: ProjectId
    name: MeshName
    cluster_ids: list[str] = Field(default_factory=list)
    phase: MeshPhase = MeshPhase.RUNNING
    version: str = DEFAULT_VERSION
    config: dict[str, Any] | None = Field(
        default=None, description="The spec.config the mesh echoes, as the wire spells it."
    )


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        return error(400, INVALID_REQUEST, f"request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, INVALID_REQUEST, "request body must be a JSON object")
    return body


async def get_stats(request: web.Request) -> web.Response:
    """``GET /_sim/stats``: the counters, plus how many meshes are in each phase now."""
    state = state_of(request)
    return json_response(state.stats.to_json() | {"meshes": state.phase_counts()})


async def reset(request: web.Request) -> web.Response:
    """``POST /_sim/reset``: forget meshes, upgrade tasks and counters, reseed the RNG (faults
    stay)."""
    state_of(request).reset()
    return json_response({"reset": True})


async def get_faults(request: web.Request) -> web.Response:
    """``GET /_sim/faults``: the fault configuration in force."""
    return json_response(state_of(request).faults.model_dump(mode="json"))


async def patch_faults(request: web.Request) -> web.Response:
    """``PATCH /_sim/faults``: change the given fields; answer the whole new configuration."""
    state = state_of(request)
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    try:
        updated = state.update_faults(**body)
    except ValidationError as exc:
        return error(400, INVALID_REQUEST, describe(exc))
    return json_response(updated.model_dump(mode="json"))


async def list_all_meshes(request: web.Request) -> web.Response:
    """``GET /_sim/meshes``: every mesh of every project, each with its project id."""
    state = state_of(request)
    items = [
        {"project_id": record.project_id, "mesh": state.mesh_json(record)}
        for record in state.all_meshes()
    ]
    return json_response({"items": items})


async def list_upgrades(request: web.Request) -> web.Response:
    """``GET /_sim/upgrades``: every upgrade task of every project, in creation order, with
    the mesh it is for and where it stands now."""
    return json_response({"items": state_of(request).upgrade_summaries()})


async def seed_mesh(request: web.Request) -> web.Response:
    """``POST /_sim/meshes``: add a pre-existing mesh; 201 with the mesh, 409 on a conflict."""
    state = state_of(request)
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    try:
        wanted = SeedMeshRequest.model_validate(body)
    except ValidationError as exc:
        return error(400, INVALID_REQUEST, describe(exc))
    try:
        record = state.seed_mesh(
            wanted.project_id,
            wanted.name,
            wanted.cluster_ids,
            wanted.phase,
            wanted.version,
            config=wanted.config,
        )
    except MeshConflictError as exc:
        return error(409, ALREADY_EXISTS, str(exc))
    return json_response(state.mesh_json(record), 201)
