"""Test helper: run the real ``meshfleet`` CLI in a child process and collect what it did."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.paths import REPO

# Variables a developer's shell may carry that must not leak into a CLI under test.
_FOREIGN = ("HUAWEICLOUD_", "ASM_", "IAM_", "TEMPORAL_", "MESHFLEET_")


@dataclass(frozen=True)
class Run:
    """One finished ``meshfleet`` process."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Standard output as the JSON document it must be."""
        return json.loads(self.out)


def env_without_settings(**extra: str) -> dict[str, str]:
    """The process environment without meshfleet, ASM, IAM or Temporal settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(extra)
    return env


def cli_env(**extra: str) -> dict[str, str]:
    """``env_without_settings`` for a CLI whose output the tests read."""
    env = env_without_settings(**extra)
    # Plain lines, not a progress bar, and no colour codes in what the tests read.
    env["TERM"] = "dumb"
    env.pop("FORCE_COLOR", None)
    return env


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path = REPO,
    stdin: bytes | None = None,
    limit_s: float = 120,
) -> Run:
    """Run ``argv`` to its end without blocking the event loop; killed if it outlasts ``limit_s``.

    The event loop stays free, so an in-process simulator or worker keeps serving meanwhile.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), limit_s)
    finally:
        # A timeout or a cancelled test must not leave the process running.
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def meshfleet(
    *args: str, env: dict[str, str], stdin: bytes | None = None, limit_s: float = 120
) -> Run:
    """Run ``python -m meshfleet ARGS`` of this checkout to its end."""
    return await run_process(
        [sys.executable, "-m", "meshfleet", *args], env=env, stdin=stdin, limit_s=limit_s
    )


FAST_STRATEGY: dict[str, Any] = {
    "window": 4,
    "waves": ["100%"],
    "max_failures": "100%",
    "first_poll": "200ms",
    "poll_interval": "200ms",
    "timeout": "1m",
    "heartbeat_timeout": "5s",
    "create_retry": {"initial": "100ms", "maximum": "500ms", "max_attempts": 10},
}


def write_manifest(path: Path, targets: list[dict[str, Any]], **strategy: Any) -> Path:
    """A manifest file with fast timings (``strategy`` overrides them)."""
    doc = {
        "strategy": FAST_STRATEGY | strategy,
        "defaults": {"region": "ap-southeast-3", "version": "1.18.7-r5"},
        "targets": targets,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def manifest_target(project_id: str, name: str, cluster: str | None = None) -> dict[str, Any]:
    """One target entry of a manifest."""
    return {
        "project_id": project_id,
        "cluster_id": cluster or f"cluster-{name}",
        "mesh_name": name,
        "node_ids": [f"node-{name}"],
    }
