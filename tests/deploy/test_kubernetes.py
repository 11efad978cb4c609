"""The worker's Kubernetes manifests (deploy/kubernetes/), validated offline and read as facts."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

import worker
from meshfleet import __version__
from meshfleet.asm import auth
from meshfleet.settings import Settings
from tests.helpers.paths import REPO

# One Kubernetes version, whose schemas kubernetes-validate bundles: every manifest is checked
# against it in strict mode (a misspelt or misplaced field is an error, not ignored).
KUBERNETES_VERSION = "1.33.0"

KUBE = REPO / "deploy" / "kubernetes"
BASE = KUBE / "base"
OVERLAYS = sorted(path for path in (KUBE / "overlays").iterdir() if path.is_dir())
COMPONENTS = sorted(path for path in (KUBE / "components").iterdir() if path.is_dir())
CREDENTIALS_EXAMPLE = KUBE / "credentials.example.yaml"
DOCKERFILE = REPO / "Dockerfile"
KUSTOMIZATION = "kustomization.yaml"

# Every ASM credential the worker reads (an endpoint is not one), the Temporal API key and mTLS
# key, and the verify webhook's token: they may reach a pod only from a Secret.
CREDENTIAL_NAMES = frozenset(
    {
        value
        for name, value in vars(auth).items()
        if name.startswith("ENV_") and value != auth.ENV_IAM_ENDPOINT
    }
    | {"TEMPORAL_API_KEY", "TEMPORAL_TLS_CLIENT_KEY_DATA", worker.VERIFY_TOKEN_ENV}
)
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
)
# What the renderer below implements of kustomize; anything else would be silently ignored.
KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "patches",
    "components",
}
# After the grace the SDK cancels what is left and the worker still has to report it and exit.
MIN_MARGIN_S = 10
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$")
_QUANTITY_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
}

Object = dict[str, Any]


# --- rendering, as kustomize does for what these manifests use ------------------------------


def documents(path: Path) -> list[Object]:
    """The YAML documents of a file, empty ones left out."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization(directory: Path) -> Object:
    """A directory's kustomization.yaml, refused if it uses what ``render`` does not implement."""
    (loaded,) = documents(directory / KUSTOMIZATION)
    unknown = set(loaded) - KUSTOMIZATION_KEYS
    assert not unknown, f"{directory}: {sorted(unknown)} is not rendered by this test"
    assert loaded["apiVersion"].startswith("kustomize.config.k8s.io/")
    assert loaded["kind"] in ("Kustomization", "Component")
    return loaded


def files_of(directory: Path) -> set[str]:
    """The files a kustomization names: its resources that are files, and its patch files."""
    k = kustomization(directory)
    named = {entry for entry in k.get("resources", []) if (directory / entry).is_file()}
    return named | {patch["path"] for patch in k.get("patches", []) if "path" in patch}


def merge(target: Object, patch: Object, where: str) -> None:
    """A strategic merge patch of maps (``null`` deletes a key), applied in place.

    Lists are refused: merging them needs kustomize's per-field merge keys.
    """
    for key, value in patch.items():
        assert not isinstance(value, list), f"{where}.{key}: a list in a patch is not rendered"
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value, f"{where}.{key}")
        else:
            target[key] = copy.deepcopy(value)


def apply_patches(directory: Path, patches: list[Object], objects: list[Object]) -> None:
    for entry in patches:
        if "path" in entry:
            (patch,) = documents(directory / entry["path"])
        else:
            (patch,) = yaml.safe_load_all(entry["patch"])
        target = entry.get("target", {"kind": patch["kind"], "name": patch["metadata"]["name"]})
        assert set(target) <= {"kind", "name"}, f"{directory}: target {target} is not rendered"
        matches = [
            obj
            for obj in objects
            if obj["kind"] == target["kind"] and obj["metadata"]["name"] == target["name"]
        ]
        # kustomize refuses a patch whose target is not among the objects; so does this.
        assert len(matches) == 1, f"{directory}: patch {entry} applies to {len(matches)} objects"
        assert patch["kind"] == target["kind"]
        merge(matches[0], patch, f"{directory.name}:{target['kind']}")


def image_parts(image: str) -> tuple[str, str]:
    """An image reference's name and tag (a registry's port is part of the name)."""
    registry, _, last = image.rpartition("/")
    name, _, tag = last.partition(":")
    assert tag and "@" not in image, f"{image}: no tag, or a digest this test does not render"
    return f"{registry}/{name}" if registry else name, tag


def apply_images(directory: Path, images: list[Object], objects: list[Object]) -> None:
    for entry in images:
        assert set(entry) <= {"name", "newName", "newTag"}, f"{directory}: {entry} not rendered"
        applied = 0
        for container in containers(objects):
            name, tag = image_parts(container["image"])
            if name != entry["name"]:
                continue
            container["image"] = f"{entry.get('newName', name)}:{entry.get('newTag', tag)}"
            applied += 1
        assert applied, f"{directory}: images entry {entry['name']!r} matches no container"


def render(directory: Path, components: tuple[Path, ...] = ()) -> list[Object]:
    """What ``kubectl kustomize directory`` prints, with ``components`` added to its own."""
    k = kustomization(directory)
    objects: list[Object] = []
    for entry in k.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else documents(path)
    for component in [directory / c for c in k.get("components", [])] + list(components):
        own = kustomization(component)
        assert own["kind"] == "Component"
        assert set(own) <= {"apiVersion", "kind", "patches"}, f"{component}: not rendered"
        apply_patches(component, own.get("patches", []), objects)
    if "namespace" in k:
        for obj in objects:
            obj["metadata"]["namespace"] = k["namespace"]
    apply_patches(directory, k.get("patches", []), objects)
    apply_images(directory, k.get("images", []), objects)
    return objects


# --- reading the rendered objects -----------------------------------------------------------


def one(objects: list[Object], kind: str) -> Object:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def containers(objects: list[Object]) -> list[Object]:
    return [
        container
        for obj in objects
        if obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
        + obj["spec"]["template"]["spec"].get("initContainers", [])
    ]


def worker_container(objects: list[Object]) -> Object:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def configmap_env(objects: list[Object]) -> dict[str, str]:
    """The variables the worker container gets from ConfigMaps (envFrom configMapRef)."""
    maps = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in worker_container(objects).get("envFrom", []):
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]]["data"])
    return env


def worker_settings(objects: list[Object]) -> Settings:
    """The worker's settings as its pods read them."""
    return Settings.model_validate(configmap_env(objects))


def quantity(value: str | int) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * _QUANTITY_FACTORS[match.group(2)]


def schema_check(obj: Object) -> None:
    """Validate one object against the pinned version's strict schema.

    Raises:
        kubernetes_validate.ValidationError: the object breaks the schema.
        kubernetes_validate.SchemaNotFoundError: no schema for its kind and apiVersion.
    """
    used = kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    # The package falls back to an older version's schemas when it lacks the one asked for.
    assert used == ".".join(KUBERNETES_VERSION.split(".")[:2])


def dockerfile_uid() -> int:
    found = re.search(r"useradd\b[^\n]*--uid (\d+)", DOCKERFILE.read_text())
    assert found, "the Dockerfile creates no user with a fixed uid"
    return int(found.group(1))


BUILDS = {
    "base": (BASE, ()),
    **{f"overlay {path.name}": (path, ()) for path in OVERLAYS},
    **{f"base + component {path.name}": (BASE, (path,)) for path in COMPONENTS},
}


@pytest.fixture(params=sorted(BUILDS), scope="module")
def build(request: pytest.FixtureRequest) -> list[Object]:
    directory, components = BUILDS[request.param]
    return render(directory, components)


@pytest.fixture(scope="module")
def base() -> list[Object]:
    return render(BASE)


# --- the files ------------------------------------------------------------------------------


def test_the_base_lists_each_of_its_files_and_each_holds_one_object() -> None:
    listed = kustomization(BASE)["resources"]
    present = {path.name for path in BASE.glob("*.y*ml")} - {KUSTOMIZATION}

    assert len(listed) == len(set(listed))
    assert set(listed) == present
    for name in listed:
        assert len(documents(BASE / name)) == 1, name


def test_every_yaml_file_is_used_or_is_the_credentials_example() -> None:
    directories = [BASE, *OVERLAYS, *COMPONENTS]
    used = {d / name for d in directories for name in files_of(d)}
    used |= {d / KUSTOMIZATION for d in directories}

    assert set(KUBE.rglob("*.y*ml")) == used | {CREDENTIALS_EXAMPLE}
    for directory in directories:
        for name in files_of(directory):
            assert (directory / name).is_file(), f"{directory} names missing {name}"


def test_every_rendered_object_and_the_secret_example_validate(build: list[Object]) -> None:
    for obj in [*build, *documents(CREDENTIALS_EXAMPLE)]:
        schema_check(obj)


def test_the_validator_refuses_a_wrong_field_type(base: list[Object]) -> None:
    broken = copy.deepcopy(one(base, "Deployment"))
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "45s"

    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        schema_check(broken)
    assert list(caught.value.path)[-1] == "terminationGracePeriodSeconds"


def test_the_validator_refuses_an_unknown_field(base: list[Object]) -> None:
    broken = copy.deepcopy(one(base, "Deployment"))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True  # misspelt: S, not s

    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        schema_check(broken)
    assert "readOnlyRootFileSystem" in caught.value.message


def test_the_validator_refuses_a_kind_it_has_no_schema_for(base: list[Object]) -> None:
    unknown = copy.deepcopy(one(base, "Deployment"))
    unknown["apiVersion"] = "apps/v2"

    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        schema_check(unknown)


# --- the process ----------------------------------------------------------------------------


def test_the_container_command_runs_the_worker(base: list[Object]) -> None:
    command = worker_container(base)["command"]
    assert command[0] == "python"
    # The pod's own settings, Temporal pointed at a closed local port, and one setting broken:
    # the worker must refuse it by name before it connects to anything.
    env = {
        "PATH": os.environ["PATH"],
        **configmap_env(base),
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "MESHFLEET_GRACEFUL_SHUTDOWN": "-1",
    }
    result = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("meshfleet worker: ValidationError"), result.stderr
    assert "MESHFLEET_GRACEFUL_SHUTDOWN" in result.stderr


def test_the_pods_settings_are_valid_and_log_json(build: list[Object]) -> None:
    settings = worker_settings(build)

    assert settings.log_format == "json"
    assert settings.metrics_port is not None
    assert settings.sdk_metrics_port is not None
    assert not settings.versioned  # versioning is a choice per build, never the base's


def test_the_grace_period_outlasts_the_drain(build: list[Object]) -> None:
    pod = one(build, "Deployment")["spec"]["template"]["spec"]
    default_grace = Settings.model_fields["graceful_shutdown_s"].default
    drain = worker_settings(build).graceful_shutdown_s

    assert default_grace > 0
    assert pod["terminationGracePeriodSeconds"] > default_grace
    assert pod["terminationGracePeriodSeconds"] >= drain + MIN_MARGIN_S


def test_container_ports_are_the_metrics_settings(build: list[Object]) -> None:
    settings = worker_settings(build)
    container = worker_container(build)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert ports == {"metrics": settings.metrics_port, "sdk-metrics": settings.sdk_metrics_port}
    # Probes ask meshfleet's own port: it is served only once Temporal has answered.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe].get("httpGet") or container[probe]["tcpSocket"]
        assert check["port"] == "metrics", probe
    service = one(build, "Service")
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert service["spec"]["clusterIP"] == "None"  # every worker scraped on its own
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


# --- credentials ----------------------------------------------------------------------------


def test_credentials_reach_the_pod_only_from_the_secret(build: list[Object]) -> None:
    container = worker_container(build)
    (example,) = documents(CREDENTIALS_EXAMPLE)

    assert auth.ENV_AK in CREDENTIAL_NAMES  # the scan reads the names the worker uses
    for var in container.get("env", []):
        if var["name"] in CREDENTIAL_NAMES:
            assert "value" not in var, f"{var['name']} is set inline"
            assert "secretKeyRef" in var["valueFrom"], var["name"]
    assert not set(configmap_env(build)) & CREDENTIAL_NAMES
    for obj in build:
        if obj["kind"] == "ConfigMap":
            assert not set(obj["data"]) & CREDENTIAL_NAMES, obj["metadata"]["name"]
    # No Secret with values ships; the pod waits for the one the operator creates.
    assert not [obj for obj in build if obj["kind"] == "Secret"]
    secrets = [src["secretRef"] for src in container["envFrom"] if "secretRef" in src]
    assert secrets == [{"name": example["metadata"]["name"]}]


def test_the_secret_example_holds_placeholders_of_credentials_only() -> None:
    (example,) = documents(CREDENTIALS_EXAMPLE)

    assert example["kind"] == "Secret"
    assert "data" not in example
    assert set(example["stringData"]) <= CREDENTIAL_NAMES
    for key, value in example["stringData"].items():
        assert re.fullmatch(r"<[^<>]+>", value), f"{key} holds a value, not a placeholder"
    assert "kubectl create secret generic " + example["metadata"]["name"] in (
        CREDENTIALS_EXAMPLE.read_text()
    )


# --- security -------------------------------------------------------------------------------


def test_the_worker_runs_as_the_images_user_on_a_read_only_root(build: list[Object]) -> None:
    pod = one(build, "Deployment")["spec"]["template"]["spec"]
    container = worker_container(build)
    effective = {**pod["securityContext"], **container["securityContext"]}

    assert effective["runAsNonRoot"] is True
    assert effective["runAsUser"] == dockerfile_uid() != 0
    assert effective["readOnlyRootFilesystem"] is True
    assert effective["allowPrivilegeEscalation"] is False
    assert effective["capabilities"] == {"drop": ["ALL"]}
    assert effective["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in effective
    # What may be written is an emptyDir.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container["volumeMounts"]:
        assert "emptyDir" in volumes[mount["name"]], mount
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/tmp" in mounted  # noqa: S108 - a path in the container, not on this machine


def test_the_image_compiles_bytecode_so_a_read_only_root_costs_nothing() -> None:
    # The worker lets Python write bytecode (the sandbox re-imports workflows for every run);
    # on a read-only root only what the image compiled exists.
    text = DOCKERFILE.read_text()
    assert re.search(r"^WORKDIR /app$", text, re.MULTILINE)
    assert "python -m compileall -q /app" in text
    assert "sys.dont_write_bytecode = False" in Path(worker.__file__).read_text()


def test_no_kubernetes_api_token_is_mounted(build: list[Object]) -> None:
    pod = one(build, "Deployment")["spec"]["template"]["spec"]
    account = one(build, "ServiceAccount")

    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False


# --- rollout, disruption, resources ---------------------------------------------------------


def test_a_rolling_update_keeps_capacity_and_waits_for_ready_workers(base: list[Object]) -> None:
    spec = one(base, "Deployment")["spec"]
    container = worker_container(base)

    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert spec["minReadySeconds"] > 0
    assert "readinessProbe" in container


@pytest.mark.parametrize("component", COMPONENTS, ids=[path.name for path in COMPONENTS])
def test_the_recreate_component_stops_old_workers_first(component: Path) -> None:
    deployment = one(render(BASE, (component,)), "Deployment")

    # The API server refuses rollingUpdate beside Recreate; kustomize keeps what it is given.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_the_budget_and_the_service_select_the_deployments_pods(build: list[Object]) -> None:
    deployment = one(build, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = one(build, "PodDisruptionBudget")
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "PodDisruptionBudget": budget["spec"]["selector"]["matchLabels"],
        "Service": one(build, "Service")["spec"]["selector"],
    }

    for kind, selector in selectors.items():
        assert selector, kind
        assert selector.items() <= pod_labels.items(), kind
        # Selectors are immutable: a version in one would make the next release unappliable.
        assert "app.kubernetes.io/version" not in selector, kind
    assert selectors["PodDisruptionBudget"] == selectors["Deployment"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in budget["spec"]


def test_memory_covers_the_benchmarks_peak_rss(base: list[Object]) -> None:
    # The row of README's performance table: "<latest> MB [<run before> MB] | <= <target> MB".
    rows = [
        line
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("| worker peak RSS")
    ]
    assert len(rows) == 1, "README.md has no single 'worker peak RSS' row to size memory from"
    *runs, target = [float(mb) for mb in re.findall(r"([\d.]+) MB", rows[0])]
    resources = worker_container(base)["resources"]

    assert runs, rows[0]
    assert quantity(resources["requests"]["memory"]) >= max(runs) * 1e6
    assert quantity(resources["limits"]["memory"]) > target * 1e6
    assert 0 < quantity(resources["requests"]["cpu"]) <= quantity(resources["limits"]["cpu"])


# --- labels, image, overlays ----------------------------------------------------------------


def test_recommended_labels_and_the_version_of_this_checkout(build: list[Object]) -> None:
    deployment = one(build, "Deployment")
    labelled = [*build, deployment["spec"]["template"]]

    for obj in labelled:
        labels = obj["metadata"]["labels"]
        assert set(RECOMMENDED_LABELS) <= set(labels), obj["metadata"]
        assert labels["app.kubernetes.io/version"] == __version__
        assert labels["app.kubernetes.io/part-of"] == "meshfleet"
    image = worker_container(build)["image"]
    assert image.endswith(f"meshfleet:{__version__}")
    assert worker_container(build)["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[path.name for path in OVERLAYS])
def test_an_overlay_patches_objects_of_the_base_and_adds_none(overlay: Path) -> None:
    base_objects = render(BASE)
    rendered = render(overlay)  # fails when a patch or an image matches no object

    def names(objects: list[Object]) -> set[tuple[str, str]]:
        return {(obj["kind"], obj["metadata"]["name"]) for obj in objects}

    assert names(rendered) == names(base_objects)
    assert rendered != base_objects
