"""A reader that stops early (``meshfleet plan fleet.yaml | head -1``) ends the CLI quietly:
exit 141 (128 + SIGPIPE, as a shell reports any writer a closed pipe stops), and nothing on
standard error: no traceback, no ``BrokenPipeError``, no "Exception ignored" at exit.

The CLI runs as its own process, its standard output a pipe this test closes; the plan reads
the simulator over loopback, so no Temporal is needed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from meshfleet.cli.app import CLOSED_PIPE
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.cli_run import cli_env, manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN
from tests.helpers.paths import EXAMPLE_MANIFEST, REPO

P1 = "9999999999999999999999999999999d"
# Rows enough that the table is many times what a pipe buffers (64 KiB on Linux): the CLI is
# still writing when the pipe closes, whatever the timing.
TARGETS = 4000
LIMIT_S = 120


@contextmanager
def _cli(*argv: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m meshfleet ARGV`` with pipes for all three streams, killed if left running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshfleet", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()


def _first_line_then_close(argv: list[str], env: dict[str, str]) -> tuple[bytes, int, str]:
    """Read one line of the CLI's standard output and close the pipe: the line, the exit code
    and standard error."""
    with _cli(*argv, env=env) as proc:
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.close()
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        return first, proc.wait(LIMIT_S), err


@pytest.mark.parametrize(
    ("flags", "first_line"),
    [([], b"ACTION  "), (["--json"], b"{\n")],
    ids=["table", "json"],
)
async def test_a_plan_read_only_to_its_first_line_ends_quietly_with_141(
    tmp_path: Path, flags: list[str], first_line: bytes
) -> None:
    fleet = [manifest_target(P1, f"mesh-pipe-{i}") for i in range(TARGETS)]
    path = write_manifest(tmp_path / "fleet.yaml", fleet)
    async with serve(SimulatorConfig(tokens=(SIM_TOKEN,))) as sim:
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        whole = await meshfleet("plan", str(path), *flags, env=env, limit_s=LIMIT_S)
        # In a thread: the simulator serving the plan runs on this event loop.
        first, code, err = await asyncio.to_thread(
            _first_line_then_close, ["plan", str(path), *flags], env
        )

    # Read to its end, the same plan (meshes to create: changes pending) is far longer than a
    # pipe holds.
    assert whole.code == ExitCode.CHANGES_PENDING, whole.err
    assert len(whole.out) > 4 * 65536
    assert whole.out.encode().startswith(first)
    assert first.startswith(first_line)
    assert code == CLOSED_PIPE
    assert err == ""


def test_output_to_a_pipe_closed_before_the_first_byte_ends_quietly_with_141() -> None:
    # The manifest comes on standard input, sent once standard output is closed: the CLI's
    # first write meets the closed pipe, however fast or slow it starts.
    for argv in (["validate", "-"], ["validate", "-", "--json"]):
        with _cli(*argv, env=cli_env()) as proc:
            assert proc.stdin and proc.stdout and proc.stderr
            proc.stdout.close()
            proc.stdin.write(EXAMPLE_MANIFEST.read_bytes())
            proc.stdin.close()
            err = proc.stderr.read().decode(errors="replace")
            assert (proc.wait(LIMIT_S), err) == (CLOSED_PIPE, ""), argv


def test_problems_for_a_closed_standard_error_end_with_141_too() -> None:
    # The reader of standard error is gone before the manifest's problems are written: the
    # refusal itself meets the closed pipe, and the exit says the output was cut (a traceback,
    # unreadable too, would have been exit 1).
    with _cli("validate", "-", env=cli_env()) as proc:
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stderr.close()
        proc.stdin.write(b"targets: [\n")
        proc.stdin.close()
        out = proc.stdout.read()
        assert (proc.wait(LIMIT_S), out) == (CLOSED_PIPE, b"")
