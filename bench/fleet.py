"""Synthetic fleets for the benchmarks: distinct names and clusters per run, valid for the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshfleet.models import MeshTarget, RetryPolicySpec, RolloutSpec, RolloutStrategy

REGIONS = ("ap-southeast-1", "ap-southeast-3", "cn-north-4")
PROJECTS = 5


@dataclass(frozen=True)
class Timing:
    """The simulated create time and the poll schedule every contender uses."""

    create_s: float = 5.0
    first_poll_s: float = 1.0
    poll_s: float = 1.0
    window: int = 200


def targets(prefix: str, count: int) -> list[MeshTarget]:
    """``count`` targets named ``{prefix}-00000``…, spread over 5 projects and 3 regions."""
    return [
        MeshTarget(
            project_id=f"{i % PROJECTS + 1:032x}",
            region=REGIONS[i % len(REGIONS)],
            cluster_id=f"{prefix}-cluster-{i:05d}",
            mesh_name=f"{prefix}-{i:05d}",
            node_ids=[f"{prefix}-node-{i:05d}"],
        )
        for i in range(count)
    ]


def body(target: MeshTarget) -> dict[str, Any]:
    """The POST body of a target, as plain JSON data."""
    return target.to_request().to_wire()


def rollout_spec(rollout_id: str, fleet: list[MeshTarget], timing: Timing) -> RolloutSpec:
    """One wave through a sliding window: the rollout machinery, not the canary policy, is timed."""
    strategy = RolloutStrategy(
        window=timing.window,
        waves=["100%"],
        max_failures="100%",
        first_poll_s=timing.first_poll_s,
        poll_interval_s=timing.poll_s,
        timeout_s=max(600.0, timing.create_s * 20),
        heartbeat_timeout_s=30,
        create_retry=RetryPolicySpec(),
    )
    return RolloutSpec(rollout_id=rollout_id, strategy=strategy, targets=fleet)
