"""Screenshots of the Temporal UI as an operator sees it, for docs/operations.md.

Against a running dev stack (``meshfleet dev --state-dir DIR``), this starts a few small
rollouts that end or wait in each way an operator meets (failed meshes, over budget, cancelled,
halted, at an approval gate, soaking), then photographs the pages with Debian's headless
Chromium through Playwright::

    make dev ARGS="--state-dir /tmp/ui-state" &            # the stack, in another terminal
    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright
    /tmp/pw/bin/python scripts/ui_screenshots.py --state-dir /tmp/ui-state --out docs/images

Rollout ids end in ``--suffix`` (default: the time), so the script can run again on one stack.
Only loopback is contacted: the stack's Temporal, UI and simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
MESHFLEET = REPO / ".venv" / "bin" / "meshfleet"
CHROMIUM = "/usr/bin/chromium"
PROJECT = "5c1e0f7a9b2d4e6f8a0b1c2d3e4f5a6b"


def stack_env(state_dir: Path) -> dict[str, str]:
    """The environment ``dev.env`` of the stack exports, on top of this one."""
    env = dict(os.environ)
    for line in (state_dir / "dev.env").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0] if value else ""
        elif line.startswith("unset "):
            for key in line.split()[1:]:
                env.pop(key, None)
    return env


def meshfleet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (this checkout's own CLI)
        [str(MESHFLEET), *args], env=env, capture_output=True, text=True, check=False
    )


def manifest(path: Path, names: list[str], **strategy: object) -> Path:
    document = {
        "strategy": {"first_poll": "1s", "poll_interval": "1s", "timeout": "2m", **strategy},
        "defaults": {"region": "ap-southeast-3", "version": "1.18.7-r5"},
        "targets": [
            {
                "project_id": PROJECT,
                "cluster_id": f"cluster-{name}",
                "mesh_name": name,
                "node_ids": [f"node-{name}"],
            }
            for name in names
        ],
    }
    path.write_text(json.dumps(document, indent=2))
    return path


def state_of(env: dict[str, str], rollout_id: str) -> str | None:
    run = meshfleet(env, "status", rollout_id, "--json")
    try:
        state: str = json.loads(run.stdout)["state"]
    except (ValueError, KeyError):
        return None
    return state


def until_state(env: dict[str, str], rollout_id: str, *states: str, limit_s: float = 90) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        state = state_of(env, rollout_id)
        if state in states:
            return state
        time.sleep(1)
    raise SystemExit(f"rollout {rollout_id} did not reach {states} in {limit_s:.0f}s")


def set_faults(asm_endpoint: str, rules: list[str]) -> None:
    request = urllib.request.Request(  # noqa: S310 (the loopback simulator)
        f"{asm_endpoint}/_sim/faults",
        data=json.dumps({"rules": rules}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (the loopback simulator)
        pass


def start_scenarios(env: dict[str, str], work: Path, suffix: str) -> dict[str, str]:
    """Start every scenario; the rollout ids by scenario name, once each is where it shows."""
    set_faults(env["ASM_ENDPOINT"], ["doomed-*=create-failed"])
    ids = {
        name: f"ui-{name}-{suffix}"
        for name in ("failed-meshes", "over-budget", "cancelled", "halted", "gate", "soak")
    }

    def start(name: str, names: list[str], **strategy: object) -> None:
        path = manifest(work / f"{name}.json", names, **strategy)
        run = meshfleet(env, "start", str(path), "--rollout-id", ids[name])
        if run.returncode != 0:
            raise SystemExit(f"start {name}: {run.stderr}")

    start(
        "failed-meshes",
        [f"{n}-{suffix}" for n in ("shop-a", "shop-b", "doomed-c", "shop-d", "doomed-e")],
        window=5,
        max_failures="100%",
    )
    start("over-budget", [f"doomed-{i}-{suffix}" for i in range(3)], window=3, max_failures=1)
    start("cancelled", [f"cancel-{i}-{suffix}" for i in range(6)], window=1)
    start(
        "halted",
        [f"doomed-h-{suffix}", *(f"halt-{i}-{suffix}" for i in range(3))],
        window=1,
        waves=[1, "100%"],
        max_failures=0,
    )
    start("gate", [f"gate-{i}-{suffix}" for i in range(3)], waves=[1, "100%"], approve_after=[1])
    start("soak", [f"soak-{i}-{suffix}" for i in range(3)], waves=[1, "100%"], soak="2h")
    # Started again with the same suffix, the rollouts attach; this one may be cancelled by now.
    if until_state(env, ids["cancelled"], "running", "cancelling", "cancelled") == "running":
        meshfleet(env, "cancel", ids["cancelled"])
    until_state(env, ids["failed-meshes"], "completed")
    until_state(env, ids["over-budget"], "failed")
    until_state(env, ids["cancelled"], "cancelled")
    until_state(env, ids["halted"], "halted")
    until_state(env, ids["gate"], "awaiting_approval")
    until_state(env, ids["soak"], "soaking")
    return ids


def shoot(ui: str, ids: dict[str, str], out: Path) -> list[Path]:
    # A tool of this script alone, not a dependency of meshfleet: imported only to shoot.
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    base = f"{ui}/namespaces/default"
    suffix = ids["soak"].rsplit("-", 1)[1]
    rollouts = 'WorkflowType = "MeshRolloutWorkflow" AND WorkflowId STARTS_WITH "rollout/ui-"'
    meshes = f'MeshRolloutId = "{ids["failed-meshes"]}" AND ExecutionStatus = "Failed"'
    pages = {
        "ui-rollouts.png": f"{base}/workflows?query={quote(rollouts)}",
        "ui-failed-meshes.png": f"{base}/workflows?query={quote(meshes)}",
        "ui-halted.png": f"{base}/workflows/{quote('rollout/' + ids['halted'], safe='')}",
        "ui-gate.png": f"{base}/workflows/{quote('rollout/' + ids['gate'], safe='')}",
        "ui-soak.png": f"{base}/workflows/{quote('rollout/' + ids['soak'], safe='')}",
        "ui-over-budget.png": (
            f"{base}/workflows/{quote('rollout/' + ids['over-budget'], safe='')}"
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        for name, url in pages.items():
            # A running workflow's page polls without end: "networkidle" never comes.
            page.goto(url, wait_until="load")
            # The single-page app fills in its tables after the page has loaded.
            page.wait_for_timeout(4000)
            path = out / name
            page.screenshot(path=str(path), full_page=False)
            written.append(path)
        browser.close()
    print(f"rollouts of this run end in -{suffix}", file=sys.stderr)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="the dev stack's state dir")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--suffix", default=time.strftime("%H%M%S"))
    args = parser.parse_args()
    env = stack_env(args.state_dir)
    work = args.state_dir / "ui-screenshots"
    work.mkdir(exist_ok=True)
    ids = start_scenarios(env, work, args.suffix)
    for path in shoot(env["MESHFLEET_UI_URL"], ids, args.out):
        print(path)


if __name__ == "__main__":
    main()
