"""Test helper: the CLI against the session's Temporal dev server, and its --json contract."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client

from meshfleet.cli.output import (
    CONVERGE_KEYS,
    FAILURE_KEYS,
    PROGRESSIVE_KEYS,
    REPORT_KEYS,
    UPGRADE_KEYS,
)
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from tests.helpers.cli_run import cli_env
from tests.helpers.fleet import SIM_TOKEN


def temporal_env(client: Client, task_queue: str) -> dict[str, str]:
    """The CLI's environment: the test's dev server and task queue, the default namespace."""
    return cli_env(
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=client.namespace,
        MESHFLEET_TASK_QUEUE=task_queue,
        MESHFLEET_UI_URL="http://127.0.0.1:8233",
    )


def unique(prefix: str) -> str:
    """A rollout id no other test of the session uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_contract(document: dict[str, Any]) -> None:
    """The --json document has exactly the keys of the contract, the first ones unchanged."""
    assert list(document) == [
        *REPORT_KEYS,
        "failures",
        *PROGRESSIVE_KEYS,
        *CONVERGE_KEYS,
        *UPGRADE_KEYS,
    ]
    assert all(list(f) == list(FAILURE_KEYS) for f in document["failures"])
    done = sum(
        document[key]
        for key in ("created", "adopted", "updated", "in_sync", "upgraded", "failed", "cancelled")
    )
    assert done + document["pending"] == document["total"]


def doomed_simulator(create_seconds: float = 0.3) -> SimulatorConfig:
    """The simulator where every mesh named ``doomed-*`` ends ``CreateFailed``."""
    return SimulatorConfig(
        create_seconds=create_seconds,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(rules=["doomed-*=create-failed"]),
    )
