"""Regions a manifest may name: those ASM is served in, and those MESHFLEET_EXTRA_REGIONS adds."""

from __future__ import annotations

from typing import Any

import pytest

from meshfleet.asm.regions import (
    ASM_REGIONS,
    EXTRA_REGIONS_ENV,
    REGION_IDS,
    parse_extra_regions,
    unknown_region_problem,
)
from meshfleet.manifest.load import ManifestError, parse_manifest, validate_document
from meshfleet.models import MeshTarget
from tests.helpers.fleet import SAMPLE_TARGET
from tests.helpers.manifests import manifest, problems_of, target

AP = "ap-southeast-3"
EU = "eu-west-101"


def refused(doc: Any, extra: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The (path, message) problems ``doc`` is refused with."""
    with pytest.raises(ManifestError) as caught:
        validate_document(doc, extra_regions=extra)
    return caught.value.entries


def test_every_listed_region_is_accepted_and_has_a_name() -> None:
    targets = [target(i, region=known.id) for i, known in enumerate(ASM_REGIONS)]
    spec = validate_document(manifest(*targets))
    assert [t.region for t in spec.targets] == [known.id for known in ASM_REGIONS]
    assert len(REGION_IDS) == len(ASM_REGIONS)
    assert all(known.name for known in ASM_REGIONS)


def test_a_region_off_the_list_is_named_at_its_path() -> None:
    doc = manifest(target(0), target(1, region="ap-southeast-99"))
    ((path, message),) = refused(doc)
    assert path == "targets[1].region"
    assert message == unknown_region_problem("ap-southeast-99")
    assert message.startswith("'ap-southeast-99' is not a region Huawei Cloud serves ASM in")
    assert problems_of(doc) == [f"{path}: {message}"]


def test_a_typo_gets_a_suggestion() -> None:
    (problem,) = problems_of(manifest(target(0, region="ap-southest-3")))
    assert problem == (
        "targets[0].region: 'ap-southest-3' is not a region Huawei Cloud serves ASM in; "
        "did you mean 'ap-southeast-3'?"
    )


def test_without_a_near_miss_the_problem_names_the_variable_that_allows_it() -> None:
    (problem,) = problems_of(manifest(target(0, region="xx-nowhere-7")))
    assert problem.startswith("targets[0].region: 'xx-nowhere-7' is not a region")
    assert problem.endswith(f"allowed by {EXTRA_REGIONS_ENV}")


def test_a_default_region_off_the_list_is_reported_once_at_the_default() -> None:
    doc = manifest(target(0), target(1))
    doc["defaults"]["region"] = "ap-southeast-99"
    paths = [path for path, _ in refused(doc)]
    assert paths == ["defaults.region"]


def test_extra_regions_are_accepted_and_suggested() -> None:
    doc = manifest(target(0, region="ap-southeast-99"))
    spec = validate_document(doc, extra_regions=("ap-southeast-99",))
    assert spec.targets[0].region == "ap-southeast-99"
    # An extra region is a candidate for a typo too.
    (problem,) = problems_of(manifest(target(0, region="ap-southeast-98")))
    assert "ap-southeast-98" in problem
    entries = refused(manifest(target(0, region="my-newregion-1x")), extra=("my-newregion-1",))
    assert entries == [
        (
            "targets[0].region",
            "'my-newregion-1x' is not a region Huawei Cloud serves ASM in; "
            "did you mean 'my-newregion-1'?",
        )
    ]


def test_the_region_order_is_held_to_the_list_too() -> None:
    doc = manifest(target(0, region=AP), target(1, region=EU))
    doc["strategy"]["regions"] = {"order": [AP, "eu-west-1o1", EU]}
    assert refused(doc) == [
        (
            "strategy.regions.order[1]",
            "'eu-west-1o1' is not a region Huawei Cloud serves ASM in; did you mean 'eu-west-101'?",
        )
    ]
    assert validate_document(doc, extra_regions=("eu-west-1o1",)).strategy.regions is not None


def test_an_unknown_region_in_the_order_still_checks_the_targets_against_it() -> None:
    doc = manifest(target(0, region=AP), target(1, region=EU))
    doc["strategy"]["regions"] = {"order": [AP, "ap-southeast-99"]}
    assert [path for path, _ in refused(doc)] == ["strategy.regions.order[1]", "targets[1].region"]
    assert refused(doc)[1][1] == f"{EU} is not in strategy.regions.order"


def test_a_region_of_the_wrong_shape_is_refused_for_its_shape_alone() -> None:
    (problem,) = problems_of(manifest(target(0, region="AP_SOUTHEAST")))
    assert "is not a region name like ap-southeast-3" in problem
    assert "serves ASM" not in problem


def test_parse_manifest_and_load_pass_the_extra_regions() -> None:
    text = (
        "targets:\n"
        "  - {project_id: 0123456789abcdef0123456789abcdef, region: zz-test-1, cluster_id: c1,\n"
        "     mesh_name: mesh-one, node_ids: [n1]}\n"
    )
    with pytest.raises(ManifestError):
        parse_manifest(text)
    assert parse_manifest(text, extra_regions=("zz-test-1",)).targets[0].region == "zz-test-1"


def test_the_payload_model_keeps_the_shape_rule_alone() -> None:
    # An older rollout's input must stay readable whatever a later list drops.
    kept = MeshTarget.model_validate(SAMPLE_TARGET.model_dump() | {"region": "zz-gone-1"})
    assert kept.region == "zz-gone-1"


@pytest.mark.parametrize(
    ("value", "regions"),
    [
        ("", ()),
        ("ap-southeast-99", ("ap-southeast-99",)),
        (" ap-southeast-99 , ,la-north-9,", ("ap-southeast-99", "la-north-9")),
    ],
)
def test_extra_regions_are_comma_separated(value: str, regions: tuple[str, ...]) -> None:
    assert parse_extra_regions(value) == regions


def test_a_malformed_extra_region_is_refused_with_the_entry() -> None:
    with pytest.raises(ValueError, match="'AP_X' is not a region name"):
        parse_extra_regions("ap-southeast-99,AP_X")
