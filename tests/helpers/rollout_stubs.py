"""Stub ASM activities and small drivers for tests of the rollout workflow itself.

The workflows run unchanged on a real worker of the session's dev server; ``create_mesh`` and
``wait_for_mesh`` are stubs registered under their real names, so each test decides exactly when
every target ends: a create blocks on an ``asyncio.Event`` per mesh until the test releases it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from meshfleet.contract.failures import BAD_REQUEST
from meshfleet.contract.payloads import (
    CREATE_MESH,
    ROLLOUT_WORKFLOW,
    WAIT_FOR_MESH,
    CreateMeshActivityInput,
    CreateMeshResult,
    RegionSegment,
    RolloutInput,
    WaitForMeshInput,
    WaitForMeshResult,
    rollout_workflow_id,
)
from meshfleet.models import MeshTarget, RolloutProgress
from tests.helpers.eventually import eventually
from tests.helpers.fleet import fast_strategy
from tests.helpers.rollout_watch import WAIT_S

REFUSED_CODE = "ASM.01000002"


@dataclass
class StubMeshApi:
    """``create_mesh`` and ``wait_for_mesh`` as the workflows call them, held by the test."""

    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    """("start" | "end", mesh name) in the order the stub saw them."""
    refused: set[str] = field(default_factory=set)
    """Mesh names whose create fails permanently (a 400 of ASM)."""
    in_flight: int = 0
    peak: int = 0
    open: bool = False
    """Once set, every create goes through at once."""

    def gate(self, name: str) -> asyncio.Event:
        event = self.gates.setdefault(name, asyncio.Event())
        if self.open:
            event.set()
        return event

    def release(self, *names: str) -> None:
        for name in names:
            self.gate(name).set()

    def release_all(self) -> None:
        self.open = True
        for event in self.gates.values():
            event.set()

    def started(self) -> list[str]:
        return [name for kind, name in self.log if kind == "start"]

    def position(self, kind: str, name: str) -> int:
        return self.log.index((kind, name))

    @activity.defn(name=CREATE_MESH)
    async def create_mesh(self, inp: CreateMeshActivityInput) -> CreateMeshResult:
        name = inp.target.mesh_name
        self.log.append(("start", name))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.gate(name).wait()
        finally:
            self.in_flight -= 1
            self.log.append(("end", name))
        if name in self.refused:
            raise ApplicationError(
                f"mesh {name} refused",
                {"error_code": REFUSED_CODE, "attempt": 1},
                type=BAD_REQUEST,
                non_retryable=True,
            )
        # Creating, so every target goes through wait_for_mesh as well.
        return CreateMeshResult(uid=f"uid-{name}", phase="Creating", adopted=False, attempts=1)

    @activity.defn(name=WAIT_FOR_MESH)
    async def wait_for_mesh(self, inp: WaitForMeshInput) -> WaitForMeshResult:
        return WaitForMeshResult(phase="Running", polls=1)


async def start(
    client: Client,
    task_queue: str,
    targets: list[MeshTarget],
    *,
    segments: list[RegionSegment] | None = None,
    max_starts_per_run: int | None = None,
    continue_as_new_after_events: int | None = None,
    **strategy: object,
) -> WorkflowHandle[Any, RolloutProgress]:
    """Start a rollout of ``targets`` (inline) with fast timings and ``strategy`` on top."""
    rollout_id = f"logic-{uuid.uuid4().hex[:8]}"
    inp = RolloutInput(
        rollout_id=rollout_id,
        strategy=fast_strategy(**strategy),
        total=len(targets),
        targets=targets,
        segments=segments,
        max_starts_per_run=max_starts_per_run,
        continue_as_new_after_events=continue_as_new_after_events,
    )
    return await client.start_workflow(
        ROLLOUT_WORKFLOW,
        inp,
        id=rollout_workflow_id(rollout_id),
        task_queue=task_queue,
        result_type=RolloutProgress,
    )


async def started(stubs: StubMeshApi, expected: list[str]) -> None:
    """Wait until exactly ``expected`` creates have begun (in any order)."""
    await eventually(
        lambda: sorted(stubs.started()) == sorted(expected), WAIT_S, f"creates of {expected}"
    )


async def update(handle: WorkflowHandle[Any, RolloutProgress], name: str) -> RolloutProgress:
    result: RolloutProgress = await handle.execute_update(name, result_type=RolloutProgress)
    return result
