"""docker-compose.yml and the Dockerfile, checked as files (no Docker engine runs here)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from meshfleet.contract import search_attributes as sa
from tests.helpers.paths import REPO

ROOT = REPO
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCRIPTS = ROOT / "deploy" / "temporal"

SERVICES = {
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-setup",
    "temporal-ui",
    "simulator",
    "worker",
}
ONE_SHOT_JOBS = {"temporal-schema", "temporal-setup"}
# Variables that hold credentials: they may come from env files, never inline in the compose
# file or in the image.
SECRET_NAMES = re.compile(r"PASSWORD|PWD|SECRET|_SK$|TOKEN|API_KEY", re.IGNORECASE)
_INTERPOLATION = re.compile(r"\$\{(\w+)(:?-)([^}]*)\}")


def interpolate(text: str) -> str:
    """What Compose substitutes with an empty environment: each ``${VAR:-default}`` default."""
    return _INTERPOLATION.sub(lambda m: m.group(3), text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(interpolate(COMPOSE.read_text()))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def env_files(service: dict[str, Any]) -> list[tuple[Path, bool]]:
    """(path, required) of each env file a service reads."""
    entries = service.get("env_file", [])
    entries = [entries] if isinstance(entries, str) else entries
    out = []
    for entry in entries:
        if isinstance(entry, str):
            out.append((ROOT / entry, True))
        else:
            out.append((ROOT / entry["path"], entry.get("required", True)))
    return out


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


# --- services and images -------------------------------------------------------------------


def test_the_stack_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_current_official_images_and_no_auto_setup(services: dict[str, dict[str, Any]]) -> None:
    images = {name: svc.get("image", "") for name, svc in services.items()}

    assert images["postgresql"] == "postgres:16"
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-schema"].startswith("temporalio/admin-tools:")
    assert images["temporal-setup"].startswith("temporalio/admin-tools:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert not [image for image in images.values() if "auto-setup" in image]
    # Pinned, never "latest": an upgrade of Temporal is a reviewed change.
    for name, image in images.items():
        if image.startswith(("temporalio/", "postgres")):
            assert ":" in image
            assert not image.endswith(":latest"), name


def test_server_version_matches_the_embedded_dev_server(
    services: dict[str, dict[str, Any]],
) -> None:
    cli = Path(sys.executable).parent / "temporal"
    version = subprocess.run(
        [str(cli), "--version"], capture_output=True, text=True, check=True
    ).stdout
    server = re.search(r"Server (\d+\.\d+\.\d+)", version)
    ui = re.search(r"UI (\d+\.\d+\.\d+)", version)
    assert server is not None
    assert ui is not None

    # `make demo` and the compose stack run the same Temporal.
    assert services["temporal"]["image"] == f"temporalio/server:{server.group(1)}"
    assert services["temporal-schema"]["image"] == f"temporalio/admin-tools:{server.group(1)}"
    assert services["temporal-ui"]["image"] == f"temporalio/ui:{ui.group(1)}"


def test_worker_and_simulator_are_built_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("worker", "simulator"):
        assert services[name]["build"] == "."
        assert services[name]["image"] == "meshfleet:local"
    assert (ROOT / services["worker"]["build"] / "Dockerfile").is_file()
    command = services["simulator"]["command"]
    assert command[:3] == ["python", "-m", "meshfleet.simulator"]
    # In a container the simulator must listen beyond loopback to be reachable.
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - what is checked
    assert (ROOT / "meshfleet" / "simulator" / "__main__.py").is_file()


# --- start order and health ----------------------------------------------------------------


def test_every_dependency_waits_for_health_or_completion(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        for dependency, spec in svc.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
            else:
                assert condition == "service_completed_successfully", (name, dependency)
                assert dependency in ONE_SHOT_JOBS, (name, dependency)


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    def waits_for(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert waits_for("temporal-schema") == {"postgresql": "service_healthy"}
    assert waits_for("temporal")["temporal-schema"] == "service_completed_successfully"
    assert waits_for("temporal-setup") == {"temporal": "service_healthy"}
    assert waits_for("temporal-ui") == {"temporal": "service_healthy"}
    assert waits_for("worker") == {
        "temporal": "service_healthy",
        "temporal-setup": "service_completed_successfully",
        "simulator": "service_healthy",
    }


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgresql", "temporal", "simulator", "worker"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["retries"] >= 1


def test_one_shot_jobs_are_not_restarted_forever(services: dict[str, dict[str, Any]]) -> None:
    for name in ONE_SHOT_JOBS:
        assert services[name]["restart"].startswith("on-failure"), name


# --- environment and credentials -----------------------------------------------------------


def test_worker_environment_wiring(services: dict[str, dict[str, Any]]) -> None:
    env = services["worker"]["environment"]

    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"
    assert env["MESHFLEET_TASK_QUEUE"] == "meshfleet"
    assert env["ASM_ENDPOINT"] == "http://simulator:8080"
    assert env["MESHFLEET_METRICS_PORT"] == "9464"
    assert env["MESHFLEET_SDK_METRICS_PORT"] == "9465"
    assert set(services["worker"]["expose"]) == {"9464", "9465"}
    # The setup job creates the namespace the worker uses.
    assert services["temporal-setup"]["environment"]["TEMPORAL_NAMESPACE"] == "default"


def test_credentials_come_from_env_files_only(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for key in svc.get("environment", {}):
            assert not SECRET_NAMES.search(key), f"{name} sets {key} inline"
    for name in ("postgresql", "temporal-schema", "temporal"):
        assert any("postgres" in path.name for path, _ in env_files(services[name])), name
    for name in ("worker", "simulator"):
        assert any("asm" in path.name for path, _ in env_files(services[name])), name


def test_env_files_exist_or_are_optional_and_never_in_the_image(
    services: dict[str, dict[str, Any]],
) -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for name, svc in services.items():
        for path, required in env_files(svc):
            if required:
                assert path.is_file(), f"{name} needs {path}"
            else:
                assert path.suffix == ".env", path
    assert {".env", "*.env", "*.env.example", ".git", ".venv"} <= set(ignored)


def test_scaling_the_worker_is_possible(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    # `--scale worker=3` fails with a fixed container name, host name or published host port.
    assert not {"container_name", "hostname", "ports"} & set(worker)
    # Metrics stay reachable on the compose network from every replica.
    assert {str(p) for p in worker["expose"]} == {
        worker["environment"]["MESHFLEET_METRICS_PORT"],
        worker["environment"]["MESHFLEET_SDK_METRICS_PORT"],
    }
    # The grace period covers the worker's own drain time.
    grace = int(worker["stop_grace_period"].rstrip("s"))
    assert grace > int(worker["environment"]["MESHFLEET_GRACEFUL_SHUTDOWN"])


def test_published_ports_stay_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    # The stack runs with dev credentials and no TLS: a bare "7233:7233" would publish
    # Temporal and the simulator on every interface of the host.
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert set(published) == {"temporal", "temporal-ui", "simulator"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    config = yaml.safe_load((SCRIPTS / "dynamicconfig" / "docker.yaml").read_text())
    assert config["frontend.enableUpdateWorkflowExecution"] == [{"value": True}]
    assert services["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"].endswith(
        "/dynamicconfig/docker.yaml"
    )


# --- the Dockerfile ------------------------------------------------------------------------


def test_dockerfile_runs_the_worker_that_exists() -> None:
    instructions = dockerfile_instructions()
    froms = [arg for op, arg in instructions if op == "FROM"]
    cmds = [arg for op, arg in instructions if op == "CMD"]

    assert froms == ["python:3.11-slim"]
    assert len(cmds) == 1
    command = yaml.safe_load(cmds[0])  # the exec form is a JSON array
    assert command == ["python", "worker.py"]
    worker = ROOT / command[1]
    assert worker.is_file()
    assert 'if __name__ == "__main__":' in worker.read_text()
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    # The image is rebuilt as released: dependencies from the hash-checked lock, nothing resolved.
    assert "pip install --require-hashes -r requirements.lock" in runs
    assert "pip install --no-deps ." in runs
    assert (ROOT / "requirements.lock").is_file()
    assert ("USER", "meshfleet") in instructions


def test_dockerfile_bakes_in_no_credentials() -> None:
    for op, arg in dockerfile_instructions():
        if op in ("ENV", "ARG"):
            assert not SECRET_NAMES.search(arg), arg
        if op in ("COPY", "ADD"):
            assert ".env" not in arg
            assert ".pem" not in arg


# --- the setup scripts ---------------------------------------------------------------------


@pytest.mark.parametrize("script", ["setup-schema.sh", "setup-namespace.sh"])
def test_scripts_are_valid_posix_sh(script: str) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    result = subprocess.run(
        [sh, "-n", str(SCRIPTS / script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def script_commands(name: str) -> str:
    """A setup script without its comments: what it runs, not what it says it runs."""
    lines = (SCRIPTS / name).read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def test_schema_job_sets_up_both_databases() -> None:
    text = script_commands("setup-schema.sh")
    for step in (" create", "setup-schema -v 0.0", "update-schema -d"):
        assert step in text
    assert "--plugin postgres12" in text
    assert "$SCHEMA/temporal/versioned" in text
    assert "$SCHEMA/visibility/versioned" in text
    assert "SCHEMA=/etc/temporal/schema/postgresql/v12" in text


def test_setup_job_registers_exactly_our_search_attributes() -> None:
    text = script_commands("setup-namespace.sh")
    listed = re.search(r'SEARCH_ATTRIBUTES="([^"]+)"', text)
    assert listed is not None
    assert listed.group(1).split() == [key.name for key in sa.ALL]
    assert "--type Keyword" in text


async def test_setup_job_against_a_real_temporal_is_idempotent(client: Client) -> None:
    namespace = f"compose-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
        "TEMPORAL_RETENTION": "24h",
        # Fail within the test's time with the script's output, rather than time out silently.
        "SETUP_TRIES": "15",
    }

    async def run() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            "sh",
            str(SCRIPTS / "setup-namespace.sh"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode is not None
        return process.returncode, out.decode()

    first_code, first_out = await run()
    again_code, again_out = await run()

    assert first_code == 0, first_out
    assert again_code == 0, again_out
    assert f"namespace {namespace} exists" in again_out
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    assert {key.name for key in sa.ALL} <= set(resp.custom_attributes)
