"""The release pipelines of ``examples/pipelines/``, their shell steps run as CI would run them.

Each job's shell steps are read from the YAML in order and run with ``bash -eo pipefail`` (what
GitHub Actions runs for ``shell: bash`` and GitLab's runner for a bash image) against the embedded
dev stack: a Temporal dev server, the ASM simulator and a worker on 127.0.0.1.

What CI would supply comes from a ``CiContext``: the commit, the approver, the secret store
(GitHub secrets, GitLab project CI/CD variables) and configuration variables. The YAML's
``env:``/``variables:`` blocks are resolved from it the way each CI resolves them (an undefined
GitHub secret reads as empty; an unknown expression fails the test, so the files cannot depend on
something this test does not model). Steps that ``uses:`` an action (checkout, setup-python,
upload-artifact) are the runner's business and are skipped; every job starts in a fresh
workspace holding only the checkout (``fleet.yaml``), as a CI job does.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.service import RPCError

from meshfleet import rollouts
from meshfleet.dev.config import StackConfig
from meshfleet.dev.stack import DevStack
from meshfleet.models import RolloutState
from meshfleet.temporal import connect
from tests.helpers.cli_run import env_without_settings, manifest_target, write_manifest
from tests.helpers.paths import REPO
from tests.helpers.ports import free_ports

# Three pipelines' worth of CLI processes and a rollout that waits at a gate: about 40 s.
pytestmark = pytest.mark.slow

PIPELINES = REPO / "examples" / "pipelines"
PROVIDERS = ("github-actions", "gitlab-ci")
JOB_ORDER = ["validate", "plan", "canary", "approve", "finish"]
APPROVER = "release-manager"
# A bound on one step, not a pause: a step that outlives it is killed and the test fails.
STEP_LIMIT_S = 120
# A simulator fault rule: every mesh whose name holds "-broken-" ends CreateFailed.
BROKEN_RULE = "*-broken-*=create-failed"
# How long a step may go on watching a rollout that has halted: the CLI refreshes its view every
# second, so a CLI that stops at a halt has long exited by then.
HALT_GRACE_S = 10


# --- what CI supplies --------------------------------------------------------------------------


@dataclass(frozen=True)
class CiContext:
    """The values a CI run would hand the pipeline."""

    sha: str
    actor: str
    secrets: dict[str, str]
    """GitHub: the secret store (``secrets.X``). GitLab: project CI/CD variables, in every job."""
    variables: dict[str, str]
    """GitHub: configuration variables (``vars.X``). GitLab: also project CI/CD variables."""


def ci_context(stack: DevStack, sha: str) -> CiContext:
    """What the CI of a project using the dev stack as its Temporal and ASM would hold."""
    env = stack.client_env()
    return CiContext(
        sha=sha,
        actor=APPROVER,
        secrets={
            "TEMPORAL_ADDRESS": env["TEMPORAL_ADDRESS"],
            # A Temporal Cloud key in real life; the dev server ignores it (see runner_env).
            "TEMPORAL_API_KEY": "ci-test-api-key",
            # The dev stack's simulator accepts its token only: the pipelines' AK/SK secrets
            # stay undefined, which GitHub hands over as empty and meshfleet ignores.
            "ASM_AUTH_TOKEN": stack.token,
        },
        variables={
            "TEMPORAL_NAMESPACE": env["TEMPORAL_NAMESPACE"],
            "ASM_ENDPOINT": env["ASM_ENDPOINT"],
        },
    )


def runner_env(home: Path) -> dict[str, str]:
    """A CI runner's own environment, before the pipeline's variables go on top."""
    # Nothing of the developer's shell that points at a real Temporal or ASM.
    env = env_without_settings()
    # The venv first: its python3 and meshfleet are this checkout, as the install step expects.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # A fresh runner: no ~/.config/temporalio/temporal.toml of the developer's applies.
    env["HOME"] = str(home)
    env["TERM"] = "dumb"
    # The install step must find the checkout already installed and download nothing.
    env["PIP_NO_INDEX"] = "1"
    # An API key turns TLS on by default; the dev server on loopback speaks plaintext.
    env["TEMPORAL_TLS"] = "false"
    return env


# --- reading the pipelines ---------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One CI job: its resolved environment and its shell scripts, in order."""

    name: str
    env: dict[str, str]
    scripts: list[str]


def load_pipeline(provider: str) -> dict[str, Any]:
    """The YAML document of one example pipeline."""
    doc = yaml.safe_load((PIPELINES / f"{provider}.yml").read_text())
    assert isinstance(doc, dict)
    return doc


_GITHUB_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _github_value(value: object, ctx: CiContext, env: Mapping[str, str]) -> str:
    def resolve(match: re.Match[str]) -> str:
        expression = match.group(1)
        scope, _, name = expression.partition(".")
        if scope == "secrets":
            return ctx.secrets.get(name, "")  # GitHub: an undefined secret is an empty string
        if scope == "vars":
            return ctx.variables.get(name, "")
        if scope == "env":
            return env[name]
        if expression == "github.sha":
            return ctx.sha
        if expression == "github.actor":
            return ctx.actor
        raise AssertionError(f"the test does not model the expression {expression!r}")

    return _GITHUB_EXPRESSION.sub(resolve, str(value))


def _github_env(block: Mapping[str, object] | None, ctx: CiContext, env: dict[str, str]) -> None:
    for name, value in (block or {}).items():
        env[name] = _github_value(value, ctx, env)


def _github_order(jobs: Mapping[str, Any]) -> list[str]:
    """Jobs in the order ``needs`` lets them run (a chain here: one order only)."""
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [
            name
            for name, job in jobs.items()
            if name not in order and set(_needs(job)) <= set(order)
        ]
        assert len(ready) == 1, f"not one chain of jobs: {ready} are ready after {order}"
        order.append(ready[0])
    return order


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def github_jobs(ctx: CiContext) -> list[Job]:
    """The jobs of github-actions.yml: their run steps, with workflow and job env resolved."""
    doc = load_pipeline("github-actions")
    # Without `shell: bash`, GitHub runs `bash -e` without pipefail: the steps rely on it.
    assert doc["defaults"]["run"]["shell"] == "bash"
    workflow_env: dict[str, str] = {}
    _github_env(doc.get("env"), ctx, workflow_env)
    jobs = doc["jobs"]
    result = []
    for name in _github_order(jobs):
        job = jobs[name]
        env = dict(workflow_env)
        _github_env(job.get("env"), ctx, env)
        scripts = []
        for step in job["steps"]:
            if "run" not in step:
                continue  # an action: the runner's set-up, not the job's logic
            assert "${{" not in step["run"], f"{name}: an expression in a script, not in env"
            assert "env" not in step, f"{name}: step env is not modelled by this test"
            scripts.append(step["run"])
        result.append(Job(name, env, scripts))
    return result


_GITLAB_KEYWORDS = {
    "workflow",
    "stages",
    "variables",
    "default",
    "include",
    "image",
    "services",
    "before_script",
    "after_script",
    "cache",
}
_GITLAB_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _gitlab_value(value: object, known: Mapping[str, str]) -> str:
    def resolve(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in known, f"the test does not model the variable ${name}"
        return known[name]

    return _GITLAB_VARIABLE.sub(resolve, str(value))


def _flatten(lines: list[Any]) -> list[str]:
    # GitLab flattens nested lists in scripts (what YAML anchors of scripts produce).
    flat: list[str] = []
    for line in lines:
        flat.extend(_flatten(line) if isinstance(line, list) else [str(line)])
    return flat


def gitlab_jobs(ctx: CiContext) -> list[Job]:
    """The jobs of gitlab-ci.yml in stage order: before_script and script as one shell script."""
    doc = load_pipeline("gitlab-ci")
    stages: list[str] = doc["stages"]
    predefined = {"CI_COMMIT_SHA": ctx.sha, "GITLAB_USER_LOGIN": ctx.actor}
    names = [n for n in doc if n not in _GITLAB_KEYWORDS and not n.startswith(".")]
    names.sort(key=lambda n: stages.index(doc[n]["stage"]))  # stable: file order in a stage
    default = doc.get("default", {})
    result = []
    for name in names:
        job = doc[name]
        env = dict(predefined)
        for block in (doc.get("variables"), job.get("variables")):
            for key, value in (block or {}).items():
                env[key] = _gitlab_value(value, env)
        # Project CI/CD variables win over the file's, and reach every job.
        env |= ctx.secrets | ctx.variables
        # GitLab runs before_script and script in one shell: one script here too.
        lines = _flatten(job.get("before_script", default.get("before_script", [])))
        lines += _flatten(job["script"])
        assert "after_script" not in job, f"{name}: after_script is not modelled by this test"
        result.append(Job(name, env, ["\n".join(lines)]))
    return result


def pipeline_jobs(provider: str, ctx: CiContext) -> list[Job]:
    """The jobs of one example pipeline, in the order CI runs them."""
    jobs = github_jobs(ctx) if provider == "github-actions" else gitlab_jobs(ctx)
    assert [job.name for job in jobs] == JOB_ORDER
    return jobs


# --- running a job -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRun:
    """A job as CI would show it: the exit code of its last step and its whole log."""

    code: int
    log: str
    workspace: Path


GiveUp = Callable[[], str | None]
"""Checked while a step runs: a reason to kill it and fail, or None to let it go on."""


def _run_script(
    script: str,
    cwd: Path,
    env: Mapping[str, str],
    script_path: Path,
    limit_s: float,
    give_up: GiveUp | None = None,
) -> JobRun:
    script_path.write_text(script)
    log_path = script_path.with_suffix(".log")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_path)],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,  # one log, as CI shows it
            # Its own process group, so a step that is killed takes the meshfleet it started.
            start_new_session=True,
        )
    deadline = time.monotonic() + limit_s
    try:
        while True:
            try:
                proc.wait(timeout=0.5)  # returns the moment the step exits
                break
            except subprocess.TimeoutExpired:
                pass
            reason = give_up() if give_up is not None else None
            if reason is None and time.monotonic() > deadline:
                reason = f"ran past {limit_s:g} s"
            if reason is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"a step {reason} and was killed; its log:\n{log_path.read_text()}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything the step left behind in its group
    return JobRun(proc.returncode, log_path.read_text(), cwd)


def run_job(
    job: Job,
    root: Path,
    manifest: Path,
    env: Mapping[str, str],
    limit_s: float = STEP_LIMIT_S,
    give_up: GiveUp | None = None,
) -> JobRun:
    """Run the job's scripts in order in a fresh workspace, stopping at the first that fails."""
    workspace = root / job.name
    workspace.mkdir()
    # The checkout: the manifest where the pipeline expects it.
    assert job.env["MANIFEST"] == "fleet.yaml"
    (workspace / "fleet.yaml").write_text(manifest.read_text())
    job_env = dict(env) | job.env
    # The release under test is this checkout, installed in the venv at its own version: the
    # install step finds it there (PIP_NO_INDEX: or fails, never downloads).
    job_env["MESHFLEET_VERSION"] = version("meshfleet")
    logs: list[str] = []
    run = JobRun(0, "", workspace)
    for i, script in enumerate(job.scripts):
        run = _run_script(
            script, workspace, job_env, root / f"{job.name}-step{i}.sh", limit_s, give_up
        )
        logs.append(run.log)
        if run.code != 0:
            break
    return JobRun(run.code, "".join(logs), workspace)


# --- the stack and its simulator ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """One embedded stack for the module: starting it costs several seconds."""
    temporal, ui, simulator = free_ports(3)
    dev = DevStack(
        StackConfig(
            state_dir=tmp_path_factory.mktemp("stack") / "state",
            temporal_port=temporal,
            ui_port=ui,
            simulator_port=simulator,
            create_seconds=0.5,
            ready_timeout_s=60,
        )
    )
    dev.start()  # stops whatever it started if it fails
    try:
        yield dev
    finally:
        dev.stop()


def simulator(stack: DevStack, method: str, path: str, body: object = None) -> Any:
    """One call of the simulator's ``/_sim/*`` API over HTTP; its JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.config.simulator_port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    assert response.status == 200, data
    return json.loads(data)


def created(stack: DevStack, project_id: str) -> dict[str, tuple[int, int]]:
    """Per mesh name of ``project_id``: (POSTs, meshes created), from ``/_sim/stats``."""
    names = simulator(stack, "GET", "/_sim/stats")["names"]
    return {n["name"]: (n["posts"], n["creations"]) for n in names if n["project_id"] == project_id}


def write_fleet(path: Path, project_id: str, names: list[str], max_failures: int = 0) -> Path:
    """A fleet that stops after its canary: waves [1, "100%"], a gate after wave 1."""
    targets = [manifest_target(project_id, name) for name in names]
    return write_manifest(
        path, targets, waves=[1, "100%"], approve_after=[1], max_failures=max_failures
    )


@contextmanager
def broken_meshes(stack: DevStack) -> Iterator[None]:
    """While the block runs, every mesh named ``*-broken-*`` ends CreateFailed."""
    rules = simulator(stack, "GET", "/_sim/faults")["rules"]
    simulator(stack, "PATCH", "/_sim/faults", {"rules": [*rules, BROKEN_RULE]})
    try:
        yield
    finally:
        simulator(stack, "PATCH", "/_sim/faults", {"rules": rules})


async def _state(stack: DevStack, rollout_id: str) -> RolloutState | None:
    client = await connect(stack.client_env())
    try:
        return (await rollouts.progress(client, rollout_id)).state
    except RPCError:
        return None  # not started yet


def still_watching_after_a_halt(stack: DevStack, rollout_id: str) -> GiveUp:
    """Gives up on a step that is still running ``HALT_GRACE_S`` after the rollout halted."""
    halted_at: list[float] = []

    def check() -> str | None:
        if not halted_at:
            if asyncio.run(_state(stack, rollout_id)) == RolloutState.HALTED:
                halted_at.append(time.monotonic())
            return None
        if time.monotonic() - halted_at[0] > HALT_GRACE_S:
            return f"was still waiting {HALT_GRACE_S} s after rollout {rollout_id} halted"
        return None

    return check


# --- the tests ---------------------------------------------------------------------------------


def test_the_approve_job_is_a_human_gate() -> None:
    github = load_pipeline("github-actions")["jobs"]["approve"]
    # Required reviewers are set on the environment: without one the job would run unasked.
    assert github["environment"]
    assert "$APPROVED_BY" in github["steps"][-1]["run"]
    gitlab = load_pipeline("gitlab-ci")["approve"]
    assert gitlab["when"] == "manual"
    # Otherwise a manual job counts as optional and the finish stage runs without it.
    assert gitlab["allow_failure"] is False
    assert "$APPROVED_BY" in gitlab["script"][-1]


def _commands(job: Job) -> list[str]:
    return [line for script in job.scripts for line in script.splitlines() if line.strip()]


def test_both_pipelines_run_the_same_commands() -> None:
    ctx = CiContext(sha="0" * 40, actor=APPROVER, secrets={}, variables={})
    github = {job.name: _commands(job) for job in github_jobs(ctx)}
    gitlab = {job.name: _commands(job) for job in gitlab_jobs(ctx)}
    assert github == gitlab


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_pipeline_stops_at_the_gate_and_completes_once_approved(
    stack: DevStack, tmp_path: Path, provider: str
) -> None:
    prefix = "gh" if provider == "github-actions" else "gl"
    project_id = f"{PROVIDERS.index(provider) + 1:032x}"
    names = [f"{prefix}-canary", f"{prefix}-mesh-a", f"{prefix}-mesh-b"]
    manifest = write_fleet(tmp_path / "fleet.yaml", project_id, names)
    sha = f"{PROVIDERS.index(provider) + 1:040x}"
    env = runner_env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    runs: dict[str, JobRun] = {}

    for job in pipeline_jobs(provider, ci_context(stack, sha)):
        assert job.env["ROLLOUT_ID"] == f"rel-{sha}"
        run = runs[job.name] = run_job(job, tmp_path, manifest, env)
        assert run.code == 0, f"{job.name} exited {run.code}:\n{run.log}"

        if job.name == "plan":
            plan = json.loads((run.workspace / "plan.json").read_text())
            assert (plan["create"], plan["conflict"]) == (3, 0)
        if job.name == "canary":
            # meshfleet said 4 and the job still passed: a gate is this job's expected end.
            assert "meshfleet start exited 4" in run.log
            assert f"rollout rel-{sha}: awaiting_approval" in run.log
            # The gate holds: the canary exists, nothing else was even POSTed.
            assert created(stack, project_id) == {f"{prefix}-canary": (1, 1)}

    finish = runs["finish"]
    assert "meshfleet wait exited 0" in finish.log
    report = json.loads((finish.workspace / "report.json").read_text())
    assert report["state"] == "completed"
    assert (report["created"], report["failed"], report["pending"]) == (3, 0, 0)
    # Every mesh created by exactly one POST: no re-run, no duplicate.
    assert created(stack, project_id) == dict.fromkeys(names, (1, 1))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_mesh_that_fails_after_the_gate_fails_the_finish_job(
    stack: DevStack, tmp_path: Path, provider: str
) -> None:
    prefix = "gh" if provider == "github-actions" else "gl"
    project_id = f"{PROVIDERS.index(provider) + 11:032x}"
    broken = f"{prefix}-broken-b"
    names = [f"{prefix}-fine-canary", broken, f"{prefix}-fine-c"]
    # A budget of one: the failure halts nothing and the rollout completes, with a failure.
    manifest = write_fleet(tmp_path / "fleet.yaml", project_id, names, max_failures=1)
    sha = f"{PROVIDERS.index(provider) + 11:040x}"
    env = runner_env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    runs: dict[str, JobRun] = {}

    with broken_meshes(stack):
        for job in pipeline_jobs(provider, ci_context(stack, sha)):
            runs[job.name] = run_job(job, tmp_path, manifest, env)
            if job.name != "finish":
                assert runs[job.name].code == 0, f"{job.name}:\n{runs[job.name].log}"

    finish = runs["finish"]
    assert finish.code == 1, finish.log
    assert "meshfleet wait exited 1" in finish.log
    failed = rf"^FAILED {broken} \(project {project_id}, region ap-southeast-3, .*\): CreateFailed"
    assert re.search(failed, finish.log, re.MULTILINE), finish.log
    report = json.loads((finish.workspace / "report.json").read_text())
    assert (report["state"], report["created"], report["failed"]) == ("completed", 2, 1)


def test_a_canary_over_its_failure_budget_fails_the_canary_job(
    stack: DevStack, tmp_path: Path
) -> None:
    # One provider is enough: both files run the same commands (the test above).
    provider = "github-actions"
    project_id = f"{21:032x}"
    broken = "gh-broken-canary"
    manifest = write_fleet(tmp_path / "fleet.yaml", project_id, [broken, "gh-never-started"])
    sha = f"{21:040x}"
    env = runner_env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    jobs = {job.name: job for job in pipeline_jobs(provider, ci_context(stack, sha))}

    with broken_meshes(stack):
        for name in ("validate", "plan"):
            run = run_job(jobs[name], tmp_path, manifest, env)
            assert run.code == 0, f"{name} exited {run.code}:\n{run.log}"
        canary = run_job(
            jobs["canary"],
            tmp_path,
            manifest,
            env,
            give_up=still_watching_after_a_halt(stack, f"rel-{sha}"),
        )

    # Over a failure budget of 0 the rollout halts after its canary: the job fails and says why.
    assert canary.code == 1, canary.log
    assert "meshfleet start exited 1" in canary.log
    failed = rf"^FAILED {broken} \(project {project_id}, .*\): CreateFailed"
    assert re.search(failed, canary.log, re.MULTILINE), canary.log
    assert "meshfleet resume" in canary.log
    # The rest of the fleet never started.
    assert created(stack, project_id) == {broken: (1, 1)}
