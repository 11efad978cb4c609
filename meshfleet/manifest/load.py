"""The rollout manifest: YAML or JSON into a validated ``RolloutSpec``, every problem at once."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable, Sequence
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from pydantic import ValidationError

from meshfleet.asm.models import (
    InstallationConfig,
    MeshCluster,
    MeshConfig,
    MeshExtendParams,
    MeshSpec,
    Selector,
)
from meshfleet.asm.regions import unknown_region_problem
from meshfleet.asm.rules import REGION
from meshfleet.manifest.durations import format_duration, parse_duration
from meshfleet.manifest.problems import (
    Loc,
    Problems,
    config_field_names,
    join_path,
    kind_of,
    pydantic_problems,
    shown,
)
from meshfleet.manifest.schedule import Schedule, count_of, schedule_of
from meshfleet.manifest.source import ManifestError, parse_document, read_source
from meshfleet.models import (
    MeshTarget,
    RetryPolicySpec,
    RolloutSpec,
    RolloutStrategy,
)
from meshfleet.rollout_id import rollout_id_problem
from meshfleet.webhook_allowlist import is_loopback
from meshfleet.webhook_allowlist import shown as shown_url

__all__ = [
    "MAX_TARGETS",
    "ManifestError",
    "derive_rollout_id",
    "describe_schedule",
    "load_manifest",
    "parse_manifest",
    "validate_document",
]

MAX_TARGETS = 20_000
MAX_DURATION_S = 30 * 86400.0

TOP_LEVEL_KEYS = ("strategy", "defaults", "targets")
TARGET_KEYS = tuple(MeshTarget.model_fields)
# A default cluster or mesh name could only ever be right for one target.
PER_TARGET_KEYS = ("cluster_id", "mesh_name")
DEFAULT_KEYS = tuple(key for key in TARGET_KEYS if key not in PER_TARGET_KEYS)
_DEFAULT_VERSION: str = MeshTarget.model_fields["version"].default

# Manifest spelling -> RolloutStrategy / RetryPolicySpec field: every `*_s` field is a duration
# written without the suffix (`first_poll: 20s`), so a new timing needs no change here.
_STRATEGY_DURATIONS = {
    name.removesuffix("_s"): name for name in RolloutStrategy.model_fields if name.endswith("_s")
}
_RETRY_DURATIONS = {
    name.removesuffix("_s"): name for name in RetryPolicySpec.model_fields if name.endswith("_s")
}
STRATEGY_KEYS = tuple(name.removesuffix("_s") for name in RolloutStrategy.model_fields)
RETRY_KEYS = tuple(name.removesuffix("_s") for name in RetryPolicySpec.model_fields)
VERIFY_KEYS = ("webhook",)
REGIONS_KEYS = ("order", "mode", "max_failures")
_MANIFEST_NAME = {field: key for key, field in (_STRATEGY_DURATIONS | _RETRY_DURATIONS).items()}

# Version rules live on MeshSpec; a minimal valid cluster list lets them be checked on their own.
_PROBE_CLUSTERS = MeshExtendParams(
    clusters=[
        MeshCluster(
            cluster_id="probe", installation=InstallationConfig(nodes=Selector.by("UID", ["p"]))
        )
    ]
)


def load_manifest(
    source: str | os.PathLike[str],
    rollout_id: str | None = None,
    *,
    stdin: BinaryIO | None = None,
    extra_regions: Collection[str] = (),
) -> RolloutSpec:
    """Read and validate a manifest file (``-`` reads standard input).

    Args:
        source: Path of a YAML or JSON manifest, or ``-``.
        rollout_id: The rollout's id; derived from the manifest's content when None.
        stdin: Replaces standard input (tests).
        extra_regions: Regions to accept besides those ASM is known to be served in
            (``meshfleet.asm.regions``); the CLI passes ``MESHFLEET_EXTRA_REGIONS``.

    Raises:
        ManifestError: listing every problem found, each with its path.
    """
    return parse_manifest(read_source(source, stdin), rollout_id, extra_regions=extra_regions)


def parse_manifest(
    content: str | bytes, rollout_id: str | None = None, *, extra_regions: Collection[str] = ()
) -> RolloutSpec:
    """Validate a manifest given as text (YAML or JSON, told apart by content).

    Args:
        content: The manifest's text or bytes.
        rollout_id: As ``load_manifest``.
        extra_regions: As ``load_manifest``.

    Raises:
        ManifestError: listing every problem found, each with its path.
    """
    return validate_document(parse_document(content), rollout_id, extra_regions=extra_regions)


def validate_document(
    data: Any, rollout_id: str | None = None, *, extra_regions: Collection[str] = ()
) -> RolloutSpec:
    """Validate an already parsed manifest document.

    Every check runs, whatever else is wrong: a part that is invalid only keeps out the checks
    that need it (the approval gates need the waves, gates and regions, and every target).

    Args:
        data: The parsed document.
        rollout_id: As ``load_manifest``.
        extra_regions: As ``load_manifest``.

    Raises:
        ManifestError: listing every problem found, each with its path.
    """
    if data is None:
        raise ManifestError(["the manifest is empty; expected a mapping with strategy and targets"])
    if not isinstance(data, dict):
        raise ManifestError(
            [f"the manifest must be a mapping with strategy and targets, not {kind_of(data)}"]
        )
    problems = Problems()
    # As in Compose files, top-level `x-` keys are free for YAML anchors shared by targets.
    extensions = [key for key in data if isinstance(key, str) and key.startswith("x-")]
    problems.unknown_keys("", data, (*TOP_LEVEL_KEYS, *extensions))
    regions = frozenset(extra_regions)
    strategy, walk = _strategy(data.get("strategy"), problems, regions)
    defaults = _defaults(data.get("defaults"), problems)
    order = None if walk is None or walk.regions is None else walk.regions.order
    checker = _TargetChecker(defaults, problems, order, regions)
    targets = checker.check(data.get("targets"), "targets" in data)
    if walk is not None and targets and checker.all_valid:
        # Waves are counted on the targets (per region with sequential regions): only a
        # complete list gives the right count, so a gate is judged only then.
        _check_gates(data.get("strategy"), schedule_of(walk, targets), problems)
    problem = None if rollout_id is None else rollout_id_problem(rollout_id)
    if problem is not None:
        problems.add("rollout_id", problem)
    if problems or strategy is None:
        raise ManifestError(problems.entries or [("strategy", "invalid")])
    return RolloutSpec(
        rollout_id=rollout_id or derive_rollout_id(strategy, targets),
        strategy=strategy,
        targets=targets,
    )


def derive_rollout_id(strategy: RolloutStrategy, targets: Iterable[MeshTarget]) -> str:
    """``fleet-`` and 12 hex digits of the SHA-256 of the validated rollout.

    Hashing the validated form (defaults applied, durations in seconds, keys sorted) means
    formatting, comments, YAML vs JSON and moving a value into ``defaults`` keep the id; any
    change to what would be rolled out, including the order of targets, changes it.
    """
    canonical = json.dumps(
        {
            "strategy": strategy.model_dump(mode="json"),
            "targets": [target.model_dump(mode="json") for target in targets],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,  # a lone surrogate from a JSON escape must still hash
    )
    return "fleet-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def describe_strategy(strategy: RolloutStrategy, total: int) -> str:
    """One line on how a rollout of ``total`` targets proceeds, for summaries."""
    ends = strategy.wave_ends(total)
    first, every = format_duration(strategy.first_poll_s), format_duration(strategy.poll_interval_s)
    return (
        f"{count_of(len(ends), 'wave')} ending at {'/'.join(map(str, ends))}, "
        f"window {strategy.window}, "
        f"failure budget {strategy.failure_budget(total)}, first poll {first}, every {every}, "
        f"timeout {format_duration(strategy.timeout_s)}"
    )


def describe_schedule(strategy: RolloutStrategy, targets: Sequence[MeshTarget]) -> str:
    """``describe_strategy``, with the regions, soak, verification and approval gates."""
    schedule = schedule_of(strategy, targets)
    timings = describe_strategy(strategy, len(targets))
    if schedule.mode == "sequential":
        ends = {
            part.region: "/".join(
                str(w.end - part.start) for w in schedule.waves if w.region == part.region
            )
            for part in schedule.regions
        }
        regions = ", ".join(
            f"{part.region} ({count_of(part.size)}, waves ending at {ends[part.region]}, "
            f"budget {part.failure_budget})"
            for part in schedule.regions
        )
        # Each region walks its own waves: the fleet-wide wave ends would mislead.
        timings = f"regions one after another: {regions}, " + timings.split(", ", 1)[1]
    elif schedule.mode == "parallel":
        regions = ", ".join(
            f"{part.region} ({count_of(part.size)}, budget {part.failure_budget})"
            for part in schedule.regions
        )
        timings += f", regions in parallel: {regions}"
    return "; ".join([timings, *progressive_parts(schedule)])


def progressive_parts(schedule: Schedule) -> list[str]:
    """Soak, verification and gates in words (nothing for a strategy without them)."""
    parts: list[str] = []
    if schedule.soak_s:
        parts.append(f"soak {format_duration(schedule.soak_s)} between waves")
    if schedule.verify:
        host = schedule.webhook_host
        parts.append(
            f"verify each wave but the last (webhook {host})"
            if host
            else "verify each wave but the last"
        )
    if schedule.approve_after:
        waves = ", ".join(map(str, schedule.approve_after))
        within = " of each region" if schedule.mode == "sequential" else ""
        plural = "s" if len(schedule.approve_after) > 1 else ""
        parts.append(f"approval after wave{plural} {waves}{within}")
    return parts


# --- strategy ------------------------------------------------------------------------------


def _is_count(value: Any) -> bool:
    # YAML reads `yes` as True, and True is an int: a count must be a real integer.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _duration(value: Any, path: str, problems: Problems) -> float | None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        problems.add(path, str(exc))
        return None
    if seconds > MAX_DURATION_S:
        problems.add(path, f"{shown(value)} is longer than {format_duration(MAX_DURATION_S)}")
        return None
    return seconds


# What the walk (which target is in which wave, where the gates stand) depends on: with these
# valid, the gates and the targets' regions are judged even when another strategy key is wrong.
_WALK_KEYS = ("waves", "approve_after", "regions")


def _strategy(
    raw: Any, problems: Problems, extra_regions: Collection[str]
) -> tuple[RolloutStrategy | None, RolloutStrategy | None]:
    """The strategy (None when any of it is wrong), and the strategy of its walk alone.

    The second is built from ``waves``, ``approve_after`` and ``regions`` only, and is None only
    when one of those is wrong: a bad webhook or timeout must not hide a gate beyond the last
    wave, or a target outside the region order.
    """
    if raw is None:
        return RolloutStrategy(), RolloutStrategy()
    if not isinstance(raw, dict):
        problems.add("strategy", f"must be a mapping, not {kind_of(raw)}")
        return None, None
    problems.unknown_keys("strategy", raw, STRATEGY_KEYS)
    # Values of the wrong type are reported here and left out; the model then checks the rest
    # (ranges, percentages), so a bad type never hides another field's problem.
    fields: dict[str, Any] = {}
    before = len(problems)
    if "window" in raw:
        if _is_count(raw["window"]):
            fields["window"] = raw["window"]
        else:
            problems.add("strategy.window", f"must be a whole number, not {kind_of(raw['window'])}")
    if "waves" in raw:
        waves = raw["waves"]
        if not isinstance(waves, list) or not waves:
            problems.add("strategy.waves", "must be a non-empty list like [1, '10%', '100%']")
        else:
            wrong = [
                i for i, wave in enumerate(waves) if not (_is_count(wave) or isinstance(wave, str))
            ]
            for i in wrong:
                problems.add(
                    f"strategy.waves[{i}]",
                    f"must be a count or a percentage like '10%', not {kind_of(waves[i])}",
                )
            if not wrong:
                fields["waves"] = waves
    if "max_failures" in raw:
        value = raw["max_failures"]
        if _is_count(value) or isinstance(value, str):
            fields["max_failures"] = value
        else:
            problems.add(
                "strategy.max_failures",
                f"must be a count or a percentage like '5%', not {kind_of(value)}",
            )
    for key, field in _STRATEGY_DURATIONS.items():
        seconds = _duration(raw[key], f"strategy.{key}", problems) if key in raw else None
        if seconds is not None:
            fields[field] = seconds
    if "create_retry" in raw:
        fields["create_retry"] = _retry(raw["create_retry"], problems)
    if "verify" in raw:
        fields["verify"] = _verify(raw["verify"], problems)
    if "approve_after" in raw:
        gates = _approve_after(raw["approve_after"], problems)
        if gates is not None:
            fields["approve_after"] = gates
    if "regions" in raw:
        regions = _regions(raw["regions"], problems, extra_regions)
        if regions is not None:
            fields["regions"] = regions
    walk = _walk(raw, fields)
    checked = {
        "window",
        "waves",
        "max_failures",
        "create_retry",
        "verify",
        "approve_after",
        "regions",
        *_STRATEGY_DURATIONS,
    }
    for key in STRATEGY_KEYS:
        if key in raw and key not in checked:
            fields[key] = raw[key]  # a field added to RolloutStrategy later: its own rules apply
    try:
        strategy = RolloutStrategy.model_validate(fields, extra="forbid")
    except ValidationError as exc:
        for loc, message in pydantic_problems(exc):
            named = tuple(_MANIFEST_NAME.get(p, p) if isinstance(p, str) else p for p in loc)
            problems.add(join_path("strategy", *named), message)
        return None, walk
    return (strategy if len(problems) == before else None), walk


def _walk(raw: dict[str, Any], fields: dict[str, Any]) -> RolloutStrategy | None:
    """The strategy of the walk alone, when every walk key given is valid (else None).

    Its problems are reported by the full strategy's validation; here they only keep it out.
    """
    if any(key in raw and key not in fields for key in _WALK_KEYS):
        return None  # given, but of the wrong type: reported already
    walk = {key: fields[key] for key in _WALK_KEYS if key in fields}
    if isinstance(walk.get("regions"), dict):
        # A region's failure budget changes no wave or gate.
        walk["regions"] = {k: v for k, v in walk["regions"].items() if k != "max_failures"}
    try:
        return RolloutStrategy.model_validate(walk, extra="forbid")
    except ValidationError:
        return None


def _retry(raw: Any, problems: Problems) -> dict[str, Any]:
    path = "strategy.create_retry"
    if not isinstance(raw, dict):
        problems.add(path, f"must be a mapping, not {kind_of(raw)}")
        return {}
    problems.unknown_keys(path, raw, RETRY_KEYS)
    fields: dict[str, Any] = {}
    for key, field in _RETRY_DURATIONS.items():
        seconds = _duration(raw[key], f"{path}.{key}", problems) if key in raw else None
        if seconds is not None:
            fields[field] = seconds
    if "backoff" in raw:
        if _is_number(raw["backoff"]):
            fields["backoff"] = raw["backoff"]
        else:
            problems.add(f"{path}.backoff", f"must be a number, not {kind_of(raw['backoff'])}")
    if "max_attempts" in raw:
        if _is_count(raw["max_attempts"]):
            fields["max_attempts"] = raw["max_attempts"]
        else:
            problems.add(
                f"{path}.max_attempts",
                f"must be a whole number, not {kind_of(raw['max_attempts'])}",
            )
    return fields


def _verify(raw: Any, problems: Problems) -> dict[str, Any] | None:
    # `verify: true` asks for the re-read alone; a mapping adds the webhook.
    path = "strategy.verify"
    if raw is None or raw is False:
        return None
    if raw is True:
        return {}
    if not isinstance(raw, dict):
        problems.add(
            path, f"must be true, false or a mapping like {{webhook: URL}}, not {kind_of(raw)}"
        )
        return None
    problems.unknown_keys(path, raw, VERIFY_KEYS)
    webhook = raw.get("webhook")
    if webhook is None:
        return {}
    if not isinstance(webhook, str):
        problems.add(f"{path}.webhook", f"must be an http(s) URL, not {kind_of(webhook)}")
        return None
    problem = _plain_http_problem(webhook)
    if problem is not None:
        problems.add(f"{path}.webhook", problem)
    return {"webhook": webhook}


def _plain_http_problem(url: str) -> str | None:
    """Why ``url`` may not be a webhook for its scheme: https, or plain http to loopback only.

    The worker holds a webhook to the same rule (``meshfleet.webhook_allowlist``); the manifest
    says so before anything starts. Other shapes (another scheme, a user or password) are
    ``VerifySpec``'s to refuse.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() != "http" or host is None or is_loopback(host):
        return None
    return (
        f"{shown(shown_url(url))} must be https:// (plain http only to loopback: 127.0.0.0/8, "
        "::1, localhost)"
    )


def _approve_after(raw: Any, problems: Problems) -> list[int] | None:
    path = "strategy.approve_after"
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(path, f"must be a list of wave numbers like [1], not {kind_of(raw)}")
        return None
    wrong = [i for i, wave in enumerate(raw) if not _is_count(wave)]
    for i in wrong:
        problems.add(f"{path}[{i}]", f"must be a wave number like 1, not {kind_of(raw[i])}")
    return None if wrong else list(raw)


def _regions(raw: Any, problems: Problems, extra_regions: Collection[str]) -> dict[str, Any] | None:
    path = "strategy.regions"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(
            path,
            "must be a mapping like {order: [ap-southeast-3, eu-west-101], mode: sequential}, "
            f"not {kind_of(raw)}",
        )
        return None
    problems.unknown_keys(path, raw, REGIONS_KEYS)
    fields: dict[str, Any] = {}
    ok = True
    if "order" in raw:
        order = raw["order"]
        if not isinstance(order, list):
            problems.add(f"{path}.order", f"must be a list of regions, not {kind_of(order)}")
            ok = False
        else:
            for i, region in enumerate(order):
                if not isinstance(region, str):
                    problems.add(f"{path}.order[{i}]", f"must be a region, not {kind_of(region)}")
                    ok = False
                elif REGION.matches(region):
                    # A region of the wrong shape is the model's to report. An unknown one
                    # leaves the order usable, so the targets are still checked against it.
                    unknown = unknown_region_problem(region, extra_regions)
                    if unknown is not None:
                        problems.add(f"{path}.order[{i}]", unknown)
            fields["order"] = order
    if "mode" in raw:
        if isinstance(raw["mode"], str):
            fields["mode"] = raw["mode"]
        else:
            problems.add(
                f"{path}.mode", f"must be sequential or parallel, not {kind_of(raw['mode'])}"
            )
            ok = False
    if "max_failures" in raw:
        value = raw["max_failures"]
        if _is_count(value) or isinstance(value, str):
            fields["max_failures"] = value
        else:
            problems.add(
                f"{path}.max_failures",
                f"must be a count or a percentage like '5%', not {kind_of(value)}",
            )
            ok = False
    # Missing `order` is left to the model ("required"), with the other fields' problems.
    return fields if ok else None


def _check_gates(raw: Any, schedule: Schedule, problems: Problems) -> None:
    gates = raw.get("approve_after") if isinstance(raw, dict) else None
    if not isinstance(gates, list):
        return
    most = schedule.max_waves
    for i, wave in enumerate(gates):
        if not _is_count(wave):
            continue
        if wave > most:
            if schedule.mode == "sequential":
                where = f"no region has more than {count_of(most, 'wave')}"
            else:
                ends = "/".join(str(w.end) for w in schedule.waves)
                where = f"the rollout has {count_of(most, 'wave')} (ending at {ends})"
            problems.add(
                f"strategy.approve_after[{i}]", f"wave {wave} is beyond the last wave: {where}"
            )
        elif wave == most and schedule.mode != "sequential" and schedule.waves:
            # Across the whole fleet the last wave ends the rollout: a gate there holds nothing
            # back. (In sequential mode it stands before the next region.)
            problems.add(
                f"strategy.approve_after[{i}]",
                f"wave {wave} is the rollout's last wave: a gate after it would hold nothing "
                "back; gate an earlier wave",
            )


# --- defaults and targets ------------------------------------------------------------------


def _defaults(raw: Any, problems: Problems) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("defaults", f"must be a mapping, not {kind_of(raw)}")
        return {}
    for key in raw:
        if key in PER_TARGET_KEYS:
            problems.add(join_path("defaults", key), "must be set per target, not in defaults")
    problems.unknown_keys("defaults", raw, TARGET_KEYS)
    return {key: value for key, value in raw.items() if key in DEFAULT_KEYS}


class _TargetChecker:
    """Validates targets one by one, and across targets: mesh names and clusters used twice."""

    def __init__(
        self,
        defaults: dict[str, Any],
        problems: Problems,
        region_order: list[str] | None = None,
        extra_regions: Collection[str] = (),
    ) -> None:
        self.defaults = defaults
        self.problems = problems
        self.region_order = region_order
        self.extra_regions = extra_regions
        self.all_valid = True
        """Every target was valid: cross-target counts (waves per region) can be trusted."""
        self.mesh_names: dict[tuple[str, str, str], int] = {}
        self.clusters: dict[str, int] = {}
        # id of a config mapping -> its validated form and problems; the defaults' config is
        # one object shared by every target that keeps it, so it is validated (and reported) once.
        self.configs: dict[int, tuple[MeshConfig | None, list[tuple[Loc, str]]]] = {}

    def check(self, raw: Any, present: bool) -> list[MeshTarget]:
        if not present or raw is None:
            self.problems.add("targets", "required: the list of meshes to create")
            return []
        if not isinstance(raw, list):
            self.problems.add("targets", f"must be a list, not {kind_of(raw)}")
            return []
        if len(raw) > MAX_TARGETS:
            raise ManifestError(
                [
                    (
                        "targets",
                        f"{len(raw):,} targets; at most {MAX_TARGETS:,} per manifest, "
                        "split the fleet into several rollouts",
                    )
                ]
            )
        if not raw:
            self.problems.add("targets", "must list at least one target")
        targets: list[MeshTarget] = []
        for index, entry in enumerate(raw):
            target = self._target(index, entry)
            if target is not None:
                targets.append(target)
        self.all_valid = self.all_valid and len(targets) == len(raw)
        return targets

    def _target(self, index: int, entry: Any) -> MeshTarget | None:
        path = f"targets[{index}]"
        if not isinstance(entry, dict):
            self.problems.add(path, f"must be a mapping of target fields, not {kind_of(entry)}")
            return None
        self.problems.unknown_keys(path, entry, TARGET_KEYS)
        own = {key: value for key, value in entry.items() if key in TARGET_KEYS}
        merged = self.defaults | own
        found = list(self._config(merged.get("config"))[1])
        if found:
            # Reported already; the other fields are still checked, without the config.
            merged = merged | {"config": None}
        target: MeshTarget | None = None
        try:
            target = MeshTarget.model_validate(merged, extra="forbid")
        except ValidationError as exc:
            found += self._diagnose(exc, merged)
        region = merged.get("region")
        if isinstance(region, str) and not any(loc[:1] == ("region",) for loc, _ in found):
            # The shape was checked by the model; the list only here, never in the payload
            # model, so a region dropped from a later list never makes an old rollout unreadable.
            unknown = unknown_region_problem(region, self.extra_regions)
            if unknown is not None:
                found.append((("region",), unknown))
            elif self.region_order is not None and region not in self.region_order:
                found.append((("region",), f"{region} is not in strategy.regions.order"))
        for loc, message in found:
            field = loc[0] if loc else None
            inherited = isinstance(field, str) and field not in own and field in merged
            missing = message == "required" and field in DEFAULT_KEYS
            self.problems.add(
                join_path("defaults" if inherited else path, *loc),
                "required, here or in defaults" if missing else message,
            )
        self._check_unique(index, path, merged)
        return None if found else target

    def _config(self, config: Any) -> tuple[MeshConfig | None, list[tuple[Loc, str]]]:
        if not isinstance(config, dict) or not config:
            return None, []  # absent, empty or not a mapping: MeshTarget's own check reports it
        cached = self.configs.get(id(config))
        if cached is None:
            try:
                # By alias only: the manifest holds spec.config exactly as the API spells it,
                # so every reported path reads as the user wrote it.
                cached = (MeshConfig.model_validate(config, by_alias=True, by_name=False), [])
            except ValidationError as exc:
                names = config_field_names()
                cached = (
                    None,
                    [(("config", *loc), msg) for loc, msg in pydantic_problems(exc, names)],
                )
            self.configs[id(config)] = cached
        return cached

    def _diagnose(self, exc: ValidationError, merged: dict[str, Any]) -> list[tuple[Loc, str]]:
        """Problems of a target that failed, each located at the manifest field it comes from."""
        found = list(pydantic_problems(exc))
        # MeshTarget builds its API request last, and only when every field is valid: a failure
        # there carries a location inside the request (``values[0]``, ``proxyConfig``), and a
        # field error hides the request's problems. So the parts of the request are checked one
        # by one, each blamed on the manifest field it comes from.
        if not all(loc and loc[0] in TARGET_KEYS for loc, _ in found):
            found = []
        bad = {loc[0] for loc, _ in found}
        for field, key in (("node_ids", "UID"), ("namespaces", "Name")):
            values = merged.get(field)
            if field in bad or not isinstance(values, list) or not values:
                continue
            try:
                Selector.by(key, values)
            except ValidationError as sel_exc:
                for loc, message in pydantic_problems(sel_exc):
                    found.append(((field, *[p for p in loc if isinstance(p, int)]), message))
        version = merged.get("version", _DEFAULT_VERSION)
        if "version" not in bad and isinstance(version, str):
            config = None if "config" in bad else self._config(merged.get("config"))[0]
            try:
                MeshSpec.model_validate(
                    {"version": version, "extendParams": _PROBE_CLUSTERS, "config": config}
                )
            except ValidationError as spec_exc:
                # The version's shape, and the features it allows (Zipkin, apm-otel).
                found += [(("version",), message) for _, message in pydantic_problems(spec_exc)]
        if not found:
            found = [((), message) for _, message in pydantic_problems(exc)]
        return found

    def _check_unique(self, index: int, path: str, merged: dict[str, Any]) -> None:
        project, region, name, cluster = (
            merged.get(key) for key in ("project_id", "region", "mesh_name", "cluster_id")
        )
        if isinstance(project, str) and isinstance(region, str) and isinstance(name, str):
            first = self.mesh_names.setdefault((project, region, name), index)
            if first != index:
                self.problems.add(
                    f"{path}.mesh_name",
                    f"{shown(name)} already used by targets[{first}] in project {shown(project)} "
                    f"region {shown(region)}",
                )
        if isinstance(cluster, str):
            first = self.clusters.setdefault(cluster, index)
            if first != index:
                self.problems.add(
                    f"{path}.cluster_id",
                    f"{shown(cluster)} already used by targets[{first}]; a cluster joins one mesh",
                )
