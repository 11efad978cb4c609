"""The progressive-delivery keys of a manifest: soak, verify, approve_after and regions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshfleet.manifest.load import ManifestError, describe_schedule, validate_document
from meshfleet.manifest.schedule import order_targets, schedule_of
from meshfleet.models import RegionOrder, RolloutSpec, RolloutStrategy, VerifySpec
from tests.helpers.manifests import manifest, problems_of, target

EU = "eu-west-101"
AP = "ap-southeast-3"
CN = "cn-north-4"


def with_strategy(*targets: dict[str, Any], **strategy: Any) -> dict[str, Any]:
    """A valid manifest document whose strategy also holds ``strategy``."""
    doc = manifest(*targets)
    doc["strategy"] |= strategy
    return doc


def regional() -> list[dict[str, Any]]:
    """Six targets, manifest order: eu, ap, eu, cn, ap, eu."""
    regions = [EU, AP, EU, CN, AP, EU]
    return [target(i, region=region) for i, region in enumerate(regions)]


# --- good ------------------------------------------------------------------------------------


def test_without_the_new_keys_nothing_changes() -> None:
    strategy = validate_document(manifest()).strategy
    assert strategy.soak_s == 0
    assert strategy.verify is None
    assert strategy.approve_after == []
    assert strategy.regions is None


@pytest.mark.parametrize(("soak", "seconds"), [("10m", 600), (90, 90), ("1h30m", 5400), (0, 0)])
def test_soak_is_a_duration(soak: Any, seconds: float) -> None:
    assert validate_document(with_strategy(soak=soak)).strategy.soak_s == seconds


@pytest.mark.parametrize(
    ("verify", "expected"),
    [
        (True, VerifySpec()),
        (False, None),
        (None, None),
        ({}, VerifySpec()),
        ({"webhook": None}, VerifySpec()),
        (
            {"webhook": "https://hooks.example.com/verify"},
            VerifySpec(webhook="https://hooks.example.com/verify"),
        ),
        # A signed URL is the caller's choice; it is no credential of meshfleet's.
        (
            {"webhook": "https://10.0.0.5:8443/v?sig=abc123"},
            VerifySpec(webhook="https://10.0.0.5:8443/v?sig=abc123"),
        ),
        # Plain http to this machine: a local check service.
        (
            {"webhook": "http://127.0.0.1:8080/verify"},
            VerifySpec(webhook="http://127.0.0.1:8080/verify"),
        ),
    ],
)
def test_verify_is_true_false_or_a_webhook(verify: Any, expected: VerifySpec | None) -> None:
    assert validate_document(with_strategy(verify=verify)).strategy.verify == expected


def test_approve_after_and_regions_are_read() -> None:
    doc = with_strategy(
        *regional(),
        approve_after=[2, 1, 1],
        regions={"order": [EU, AP, CN], "mode": "parallel", "max_failures": "50%"},
    )
    strategy = validate_document(doc).strategy
    assert strategy.approve_after == [1, 2]
    assert strategy.regions == RegionOrder(order=[EU, AP, CN], mode="parallel", max_failures="50%")
    only_order = with_strategy(*regional(), regions={"order": [CN, AP, EU]})
    regions = validate_document(only_order).strategy.regions
    assert regions is not None
    assert (regions.mode, regions.max_failures) == ("sequential", None)


def test_a_region_listed_without_targets_is_fine() -> None:
    doc = with_strategy(*regional(), regions={"order": ["ap-southeast-1", EU, AP, CN]})
    assert validate_document(doc).strategy.regions is not None


# --- bad: every problem with its path ----------------------------------------------------------


def test_bad_soak_and_verify_values_have_their_paths() -> None:
    assert problems_of(with_strategy(soak="a while", verify="yes")) == [
        "strategy.soak: 'a while' is not a duration like '20s', '10m', '1h30m', '500ms' or a "
        "number of seconds",
        "strategy.verify: must be true, false or a mapping like {webhook: URL}, not a string",
    ]
    assert problems_of(with_strategy(soak="31d")) == ["strategy.soak: '31d' is longer than 30d"]


@pytest.mark.parametrize(
    ("verify", "problem"),
    [
        (
            {"webhook": "ftp://hooks.example.com/x"},
            "strategy.verify.webhook: 'ftp://hooks.example.com/x' is not an http(s) URL",
        ),
        (
            {"webhook": "hooks.example.com"},
            "strategy.verify.webhook: 'hooks.example.com' is not an http(s) URL",
        ),
        ({"webhook": 8080}, "strategy.verify.webhook: must be an http(s) URL, not a number"),
        (
            {"hook": "https://x.example"},
            "strategy.verify.hook: unknown field (did you mean 'webhook'?)",
        ),
        (
            {"webhook": "https://ci:s3cret@hooks.example.com/v"},
            "strategy.verify.webhook: must not carry a user or password; the worker sends "
            "MESHFLEET_VERIFY_TOKEN as a bearer token",
        ),
        (
            {"webhook": "https://hooks.example.com/v", "token": "t"},
            "strategy.verify.token: unknown field",
        ),
        (
            ["https://x.example"],
            "strategy.verify: must be true, false or a mapping like {webhook: URL}, not a list",
        ),
        (
            {"webhook": "http://checks.example.com/verify"},
            "strategy.verify.webhook: 'http://checks.example.com/verify' must be https:// (plain "
            "http only to loopback: 127.0.0.0/8, ::1, localhost)",
        ),
    ],
)
def test_a_bad_webhook_is_named(verify: Any, problem: str) -> None:
    assert problems_of(with_strategy(verify=verify)) == [problem]


@pytest.mark.parametrize(
    ("approve_after", "problems"),
    [
        (1, ["strategy.approve_after: must be a list of wave numbers like [1], not a number"]),
        (
            [1, True, "2"],
            [
                "strategy.approve_after[1]: must be a wave number like 1, not true/false",
                "strategy.approve_after[2]: must be a wave number like 1, not a string",
            ],
        ),
        ([0], ["strategy.approve_after[0]: wave numbers start at 1"]),
        # manifest(): 2 targets, waves [1, 50%, 100%] -> ends 1/2: two waves.
        (
            [1, 3],
            [
                "strategy.approve_after[1]: wave 3 is beyond the last wave: the rollout has "
                "2 waves (ending at 1/2)"
            ],
        ),
    ],
)
def test_bad_gates_are_named(approve_after: Any, problems: list[str]) -> None:
    assert problems_of(with_strategy(approve_after=approve_after)) == problems


def test_a_gate_is_counted_against_the_waves_of_each_region() -> None:
    # Sequential: each region walks [1, 50%, 100%] on its own; eu has 3 targets (3 waves),
    # ap 2 (2 waves), cn 1 (1 wave). A gate after wave 3 stands in eu only: allowed.
    regions = {"order": [EU, AP, CN]}
    assert validate_document(with_strategy(*regional(), regions=regions, approve_after=[3]))
    assert problems_of(with_strategy(*regional(), regions=regions, approve_after=[4])) == [
        "strategy.approve_after[0]: wave 4 is beyond the last wave: no region has more than 3 waves"
    ]
    # Parallel: the waves run over the whole fleet of six: 1/3/6.
    parallel = {"order": [EU, AP, CN], "mode": "parallel"}
    assert problems_of(with_strategy(*regional(), regions=parallel, approve_after=[4])) == [
        "strategy.approve_after[0]: wave 4 is beyond the last wave: the rollout has 3 waves "
        "(ending at 1/3/6)"
    ]


def test_a_gate_beyond_the_waves_is_not_judged_while_targets_are_wrong() -> None:
    # The wave count depends on the targets: with a broken one it would be wrong either way.
    doc = with_strategy(target(0), target(1, mesh_name="bad-"), approve_after=[5])
    assert problems_of(doc) == ["targets[1].mesh_name: must not end with '-'"]


def test_a_gate_beyond_the_waves_is_judged_while_another_strategy_key_is_wrong() -> None:
    doc = with_strategy(approve_after=[3], timeout="soon")
    assert problems_of(doc) == [
        "strategy.timeout: 'soon' is not a duration like '20s', '10m', '1h30m', '500ms' or a "
        "number of seconds",
        "strategy.approve_after[0]: wave 3 is beyond the last wave: the rollout has 2 waves "
        "(ending at 1/2)",
    ]


def test_targets_outside_the_region_order_are_named_at_their_path() -> None:
    doc = with_strategy(*regional(), regions={"order": [AP, CN]})
    assert problems_of(doc) == [
        f"targets[0].region: {EU} is not in strategy.regions.order",
        f"targets[2].region: {EU} is not in strategy.regions.order",
        f"targets[5].region: {EU} is not in strategy.regions.order",
    ]
    # A region inherited from defaults is blamed on the default, once.
    doc = with_strategy(target(0), target(1, region=AP), regions={"order": [AP]})
    doc["defaults"]["region"] = EU
    assert problems_of(doc) == [f"defaults.region: {EU} is not in strategy.regions.order"]


def test_bad_regions_have_their_paths() -> None:
    doc = with_strategy(
        regions={"order": [AP, AP, "Mars"], "mode": "both", "max_failures": "lots", "budget": 1}
    )
    assert problems_of(doc) == [
        "strategy.regions.budget: unknown field",
        "strategy.regions.order[2]: 'Mars' is not a region name like ap-southeast-3 (at most 40 "
        "characters)",
        "strategy.regions.mode: Input should be 'sequential' or 'parallel'",
        "strategy.regions.max_failures: 'lots' is not a count or a percentage like '5%'",
    ]
    assert problems_of(with_strategy(regions={"order": [AP, EU, AP]})) == [
        "strategy.regions.order: 'ap-southeast-3' is listed twice"
    ]
    assert problems_of(with_strategy(regions={"mode": "parallel"})) == [
        "strategy.regions.order: required"
    ]
    assert problems_of(with_strategy(regions={"order": []})) == [
        "strategy.regions.order: must not be empty"
    ]
    assert problems_of(with_strategy(regions={"order": AP, "mode": 1, "max_failures": [1]})) == [
        "strategy.regions.order: must be a list of regions, not a string",
        "strategy.regions.mode: must be sequential or parallel, not a number",
        "strategy.regions.max_failures: must be a count or a percentage like '5%', not a list",
    ]
    assert problems_of(with_strategy(regions={"order": [AP, 7]})) == [
        "strategy.regions.order[1]: must be a region, not a number"
    ]
    assert problems_of(with_strategy(regions=[AP])) == [
        "strategy.regions: must be a mapping like {order: [ap-southeast-3, eu-west-101], "
        "mode: sequential}, not a list"
    ]


def test_every_problem_at_once() -> None:
    doc = with_strategy(
        *regional(),
        soak="later",
        verify={"webhook": "mailto:ops@example.com"},
        approve_after=[0],
        regions={"order": [AP, CN]},
    )
    doc["targets"][1]["mesh_name"] = "x"
    problems = problems_of(doc)
    for path in (
        "strategy.soak:",
        "strategy.verify.webhook:",
        "strategy.approve_after[0]:",
        "targets[1].mesh_name:",
    ):
        assert sum(line.startswith(path) for line in problems) == 1, (path, problems)


# --- the schedule ------------------------------------------------------------------------------


def spec_of(doc: dict[str, Any]) -> RolloutSpec:
    return validate_document(doc)


def test_targets_are_ordered_by_region_stably() -> None:
    spec = spec_of(with_strategy(*regional(), regions={"order": [AP, EU, CN]}))
    ordered, parts = order_targets(spec.strategy, spec.targets)
    assert [t.mesh_name for t in ordered] == [
        "mesh-shop-1",
        "mesh-shop-4",
        "mesh-shop-0",
        "mesh-shop-2",
        "mesh-shop-5",
        "mesh-shop-3",
    ]
    assert [(p.region, p.start, p.end) for p in parts] == [(AP, 0, 2), (EU, 2, 5), (CN, 5, 6)]
    # The manifest's own order is what the rollout id hashes: validation does not reorder.
    assert [t.mesh_name for t in spec.targets] == [f"mesh-shop-{i}" for i in range(6)]


def test_without_regions_the_order_is_the_manifest_order() -> None:
    spec = spec_of(with_strategy(*regional()))
    ordered, parts = order_targets(spec.strategy, spec.targets)
    assert ordered == spec.targets
    assert parts == []


def test_a_region_outside_the_order_is_refused_in_code_too() -> None:
    spec = spec_of(with_strategy(*regional()))
    strategy = spec.strategy.model_copy(update={"regions": RegionOrder(order=[AP])})
    with pytest.raises(ValueError, match=f"regions {CN}, {EU} are not in strategy.regions.order"):
        order_targets(strategy, spec.targets)


def test_the_sequential_schedule_walks_the_waves_within_each_region() -> None:
    spec = spec_of(
        with_strategy(
            *regional(),
            soak="10m",
            verify={"webhook": "https://hooks.example.com/v?sig=s3cr3t"},
            approve_after=[1],
            max_failures=1,
            regions={"order": [EU, AP, CN], "max_failures": 0},
        )
    )
    schedule = schedule_of(spec.strategy, spec.targets)
    assert schedule.mode == "sequential"
    assert [(p.region, p.size, p.failure_budget) for p in schedule.regions] == [
        (EU, 3, 0),
        (AP, 2, 0),
        (CN, 1, 0),
    ]
    assert [(w.region, w.number, w.start, w.end, w.approval) for w in schedule.waves] == [
        (EU, 1, 0, 1, True),
        (EU, 2, 1, 2, False),
        (EU, 3, 2, 3, False),
        (AP, 1, 3, 4, True),
        (AP, 2, 4, 5, False),
        # The rollout's very last wave: nothing is held back after it, so no gate.
        (CN, 1, 5, 6, False),
    ]
    assert (schedule.soak_s, schedule.verify, schedule.webhook_host) == (
        600,
        True,
        "hooks.example.com",
    )
    summary = describe_schedule(spec.strategy, spec.targets)
    assert summary.startswith(
        f"regions one after another: {EU} (3 targets, waves ending at 1/2/3, budget 0), "
        f"{AP} (2 targets, waves ending at 1/2, budget 0), {CN} (1 target, waves ending at 1, "
        "budget 0), window 4, failure budget 1,"
    )
    assert summary.endswith(
        "; soak 10m between waves; verify each wave but the last (webhook hooks.example.com); "
        "approval after wave 1 of each region"
    )
    assert "s3cr3t" not in summary  # the host only: a URL's query may be a signature


def test_the_parallel_schedule_walks_the_waves_over_the_fleet() -> None:
    spec = spec_of(
        with_strategy(*regional(), verify=True, regions={"order": [CN, AP, EU], "mode": "parallel"})
    )
    schedule = schedule_of(spec.strategy, spec.targets)
    assert [(w.region, w.number, w.end) for w in schedule.waves] == [
        (None, 1, 1),
        (None, 2, 3),
        (None, 3, 6),
    ]
    assert [p.region for p in schedule.regions] == [CN, AP, EU]
    summary = describe_schedule(spec.strategy, spec.targets)
    assert summary.startswith("3 waves ending at 1/3/6, window 4, failure budget 1,")
    assert (
        f"regions in parallel: {CN} (1 target, budget 1), {AP} (2 targets, budget 1), "
        f"{EU} (3 targets, budget 1); verify each wave but the last"
    ) in summary


def test_a_plain_strategy_is_described_as_before() -> None:
    spec = spec_of(manifest())
    assert describe_schedule(spec.strategy, spec.targets) == (
        "2 waves ending at 1/2, window 4, failure budget 1, first poll 20s, every 10s, timeout 30m"
    )


# --- fuzz: the new keys never crash the loader ------------------------------------------------

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 5)
    | st.sampled_from(["10m", "5%", "parallel", "sequential", AP, EU, "https://h.example/x", ""]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["order", "mode", "max_failures", "webhook", "x"]), inner)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["soak", "verify", "approve_after", "regions"]), _values))
def test_fuzz_progressive_keys(strategy: dict[str, Any]) -> None:
    doc = with_strategy(*regional(), **strategy)
    try:
        spec = validate_document(doc)
    except ManifestError as exc:
        assert exc.problems
        assert all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert isinstance(spec.strategy, RolloutStrategy)
        schedule_of(spec.strategy, spec.targets)  # a valid manifest always has a schedule


def test_a_gate_after_the_last_wave_of_the_fleet_is_refused() -> None:
    raw = with_strategy(*regional(), waves=[1, "100%"], approve_after=[2])
    with pytest.raises(ManifestError) as refused:
        spec_of(raw)
    assert "strategy.approve_after[0]: wave 2 is the rollout's last wave" in str(refused.value)
