"""The aiohttp application: routes, request ids on every answer, errors as ASM error bodies."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from meshfleet.simulator import admin, iam, meshes, upgrades
from meshfleet.simulator.context import STATE
from meshfleet.simulator.responses import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    NO_SUCH_API,
    REQUEST_ID_HEADER,
    error,
)
from meshfleet.simulator.state import SimulatorState
from meshfleet.simulator.stats import (
    CREATE,
    CREATE_UPGRADE,
    DELETE,
    IAM_TOKEN,
    LIST,
    MESH_OPERATIONS,
    MOVE_UPGRADE,
    SHOW,
    SHOW_UPGRADE,
    SHOW_UPGRADE_JOB,
    UPDATE,
)

log = logging.getLogger("simulator")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_COUNTED = {*MESH_OPERATIONS, IAM_TOKEN}


@web.middleware
async def _request_id_and_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Give every answer an ``X-Request-Id``, turn exceptions into error bodies, count answers."""
    request_id = str(uuid.uuid4())
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # Routing failures (unknown path, wrong method) get the gateway's JSON, not aiohttp's text.
        if exc.status in {404, 405}:
            response = error(exc.status, NO_SUCH_API, f"no API {request.method} {request.path}")
        else:
            response = error(exc.status, INVALID_REQUEST, exc.reason)
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        response = error(500, INTERNAL_ERROR, "internal error")
    response.headers[REQUEST_ID_HEADER] = request_id
    operation = request.match_info.route.name
    if operation in _COUNTED:
        request.app[STATE].stats.record_answer(operation, response.status)
    return response


def build_app(state: SimulatorState) -> web.Application:
    """The simulator as an aiohttp application serving ``state``."""
    app = web.Application(middlewares=[_request_id_and_errors])
    app[STATE] = state
    app.router.add_post("/v1/{project_id}/meshes", meshes.create_mesh, name=CREATE)
    app.router.add_get("/v1/{project_id}/meshes", meshes.list_meshes, name=LIST, allow_head=False)
    app.router.add_get(
        "/v1/{project_id}/meshes/{mesh_id}", meshes.show_mesh, name=SHOW, allow_head=False
    )
    app.router.add_delete("/v1/{project_id}/meshes/{mesh_id}", meshes.delete_mesh, name=DELETE)
    # The one mesh call published under /v2/projects/ rather than /v1/.
    app.router.add_put(
        "/v2/projects/{project_id}/meshes/{mesh_id}", meshes.update_mesh, name=UPDATE
    )
    app.router.add_post(
        "/v1/{project_id}/mesh-upgrade", upgrades.create_upgrade, name=CREATE_UPGRADE
    )
    app.router.add_get(
        "/v1/{project_id}/mesh-upgrade/{task_id}",
        upgrades.show_upgrade,
        name=SHOW_UPGRADE,
        allow_head=False,
    )
    app.router.add_put(
        "/v1/{project_id}/mesh-upgrade/{task_id}", upgrades.move_upgrade, name=MOVE_UPGRADE
    )
    app.router.add_get(
        "/v1/{project_id}/mesh-job/{job_id}",
        upgrades.show_upgrade_job,
        name=SHOW_UPGRADE_JOB,
        allow_head=False,
    )
    app.router.add_post("/v3/auth/tokens", iam.issue_token, name=IAM_TOKEN)
    app.router.add_get("/_sim/stats", admin.get_stats, allow_head=False)
    app.router.add_post("/_sim/reset", admin.reset)
    app.router.add_get("/_sim/faults", admin.get_faults, allow_head=False)
    app.router.add_patch("/_sim/faults", admin.patch_faults)
    app.router.add_get("/_sim/meshes", admin.list_all_meshes, allow_head=False)
    app.router.add_post("/_sim/meshes", admin.seed_mesh)
    app.router.add_get("/_sim/upgrades", admin.list_upgrades, allow_head=False)
    return app
