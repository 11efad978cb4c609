"""A faithful Huawei Cloud ASM mesh API (aiohttp) with fault injection, for dev, tests and demos.

The simulator is a development tool: its ``/_sim/*`` admin endpoints need no authentication, so
it binds to 127.0.0.1 by default. Start it with ``python -m simulator`` (see ``--help``) or, in
tests, with ``simulator.testing.serve()``.

Mesh API (auth enforced unless ``auth_enabled=False``; every answer has an ``X-Request-Id``):
    ``POST /v1/{project_id}/meshes``, ``GET /v1/{project_id}/meshes``,
    ``GET|DELETE /v1/{project_id}/meshes/{mesh_id}``, ``PUT /v2/projects/{project_id}/meshes/
    {mesh_id}``, the canary upgrade task's ``POST /v1/{project_id}/mesh-upgrade``,
    ``GET|PUT /v1/{project_id}/mesh-upgrade/{task_id}`` and ``GET /v1/{project_id}/mesh-job/
    {job_id}``, and IAM's ``POST /v3/auth/tokens``.

Admin API (no auth):
    ``GET /_sim/stats``      counters (``Stats.to_json()``) plus ``meshes``: phase -> count now
    ``POST /_sim/reset``     forget meshes, upgrade tasks and counters, reseed the RNG (faults,
                             tokens stay)
    ``GET /_sim/faults``     the ``FaultConfig`` in force
    ``PATCH /_sim/faults``   change some ``FaultConfig`` fields; answers the whole new config
    ``GET /_sim/meshes``     every mesh of every project: ``{"items": [{"project_id", "mesh"}]}``
    ``POST /_sim/meshes``    seed a mesh: ``{"project_id", "name", "cluster_ids"?, "phase"?,
                             "version"?, "config"?}``; not counted as a creation
    ``GET /_sim/upgrades``   every upgrade task: ``{"items": [{"project_id", "mesh_uid",
                             "mesh_name", "id", "from_version", "target_version", "step",
                             "phase", "message", "job_id", "open"}]}``
"""

from meshfleet.simulator.app import build_app
from meshfleet.simulator.clock import Clock, ManualClock, SystemClock
from meshfleet.simulator.config import (
    FaultAction,
    FaultConfig,
    LeaveRule,
    NameRule,
    SimulatorConfig,
)
from meshfleet.simulator.state import MeshConflictError, MeshRecord, SimulatorState
from meshfleet.simulator.stats import NameStats, Stats

__all__ = [
    "Clock",
    "FaultAction",
    "FaultConfig",
    "LeaveRule",
    "ManualClock",
    "MeshConflictError",
    "MeshRecord",
    "NameRule",
    "NameStats",
    "SimulatorConfig",
    "SimulatorState",
    "Stats",
    "SystemClock",
    "build_app",
]
