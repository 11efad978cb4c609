"""The minimal Temporal baseline's workflow: a POST activity, a polling activity, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow

WORKFLOW = "BenchMinimalMesh"
POST = "bench_post_mesh"
POLL = "bench_poll_mesh"
TASK_QUEUE = "bench-minimal"


@dataclass
class MinimalInput:
    """One target: where to POST, the body, and the poll schedule."""

    project_id: str
    body: dict[str, Any] = field(default_factory=dict)
    first_poll_s: float = 1.0
    poll_s: float = 1.0


@dataclass
class PostInput:
    """Input of the POST activity."""

    project_id: str
    body: dict[str, Any]


@dataclass
class PollInput:
    """Input of the polling activity."""

    project_id: str
    uid: str
    first_poll_s: float
    poll_s: float


@workflow.defn(name=WORKFLOW)
class MinimalMeshWorkflow:
    """POST, then poll until ``Running``: the least Temporal can do for one mesh."""

    @workflow.run
    async def run(self, inp: MinimalInput) -> str:
        """The mesh's final phase."""
        uid: str = await workflow.execute_activity(
            POST,
            PostInput(inp.project_id, inp.body),
            result_type=str,
            start_to_close_timeout=timedelta(seconds=90),
        )
        phase: str = await workflow.execute_activity(
            POLL,
            PollInput(inp.project_id, uid, inp.first_poll_s, inp.poll_s),
            result_type=str,
            start_to_close_timeout=timedelta(minutes=30),
        )
        return phase
