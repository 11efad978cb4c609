"""``strategy.existing`` (what a rollout does with a mesh that exists) and ``strategy.notify``
(where a drift check reports): read into the payload, and refused with their path and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshfleet.manifest.load import load_manifest, validate_document
from meshfleet.models import NotifySpec, RolloutStrategy
from tests.helpers.manifests import manifest, problems_of

ALLOWED = "must be adopt, converge or require_match"


def with_strategy(**strategy: Any) -> dict[str, Any]:
    """A valid manifest document whose strategy also holds ``strategy``."""
    doc = manifest()
    doc["strategy"] |= strategy
    return doc


# --- good ------------------------------------------------------------------------------------


def test_without_either_key_an_existing_mesh_is_adopted_and_nobody_is_notified() -> None:
    strategy = validate_document(manifest()).strategy
    assert (strategy.existing, strategy.notify) == ("adopt", None)


@pytest.mark.parametrize("mode", ["adopt", "converge", "require_match"])
def test_every_mode_of_existing_is_read(mode: str) -> None:
    assert validate_document(with_strategy(existing=mode)).strategy.existing == mode


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        (None, None),
        ({}, NotifySpec()),
        ({"webhook": None}, NotifySpec()),
        (
            {"webhook": "https://hooks.example.com/drift"},
            NotifySpec(webhook="https://hooks.example.com/drift"),
        ),
        # Plain http to this machine: a local relay.
        (
            {"webhook": "http://127.0.0.1:8080/drift"},
            NotifySpec(webhook="http://127.0.0.1:8080/drift"),
        ),
        ({"webhook": "http://localhost/drift"}, NotifySpec(webhook="http://localhost/drift")),
    ],
)
def test_notify_is_a_webhook_or_nothing(notify: Any, expected: NotifySpec | None) -> None:
    assert validate_document(with_strategy(notify=notify)).strategy.notify == expected


def test_both_reach_the_rollout_from_a_yaml_file(tmp_path: Path) -> None:
    doc = with_strategy(
        existing="require_match", notify={"webhook": "https://hooks.example.com/drift"}
    )
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    strategy = load_manifest(str(path)).strategy
    assert isinstance(strategy, RolloutStrategy)
    assert strategy.existing == "require_match"
    assert strategy.notify == NotifySpec(webhook="https://hooks.example.com/drift")


# --- bad: every problem with its path ----------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "problem"),
    [
        ("convrge", f"{ALLOWED}, not 'convrge' (did you mean 'converge'?)"),
        ("require-match", f"{ALLOWED}, not 'require-match' (did you mean 'require_match'?)"),
        ("Adopt", f"{ALLOWED}, not 'Adopt' (did you mean 'adopt'?)"),
        ("overwrite", f"{ALLOWED}, not 'overwrite'"),
        (True, f"{ALLOWED}, not true/false"),
        (1, f"{ALLOWED}, not a number"),
        (None, f"{ALLOWED}, not null"),
        (["adopt"], f"{ALLOWED}, not a list"),
    ],
)
def test_a_bad_existing_names_the_field_and_the_modes(existing: Any, problem: str) -> None:
    assert problems_of(with_strategy(existing=existing)) == [f"strategy.existing: {problem}"]


@pytest.mark.parametrize(
    ("notify", "problem"),
    [
        (
            {"webhook": "http://hooks.example.com/drift"},
            "strategy.notify.webhook: 'http://hooks.example.com/drift' must be https:// (plain "
            "http only to loopback: 127.0.0.0/8, ::1, localhost)",
        ),
        (
            {"webhook": "http://10.0.0.5:8080/drift"},
            "strategy.notify.webhook: 'http://10.0.0.5:8080/drift' must be https:// (plain "
            "http only to loopback: 127.0.0.0/8, ::1, localhost)",
        ),
        (
            {"webhook": "ftp://hooks.example.com/x"},
            "strategy.notify.webhook: 'ftp://hooks.example.com/x' is not an http(s) URL",
        ),
        ({"webhook": 8080}, "strategy.notify.webhook: must be an http(s) URL, not a number"),
        (
            {"webhook": "https://ci:s3cret@hooks.example.com/d"},
            "strategy.notify.webhook: must not carry a user or password; the worker sends "
            "MESHFLEET_NOTIFY_TOKEN as a bearer token",
        ),
        (
            {"hook": "https://hooks.example.com/drift"},
            "strategy.notify.hook: unknown field (did you mean 'webhook'?)",
        ),
        (
            {"webhook": "https://hooks.example.com/drift", "token": "t"},
            "strategy.notify.token: unknown field",
        ),
        (
            "https://hooks.example.com/drift",
            "strategy.notify: must be a mapping like {webhook: URL}, not a string",
        ),
        (True, "strategy.notify: must be a mapping like {webhook: URL}, not true/false"),
    ],
)
def test_a_bad_notify_is_named(notify: Any, problem: str) -> None:
    assert problems_of(with_strategy(notify=notify)) == [problem]


def test_a_password_in_the_webhook_is_never_repeated() -> None:
    (problem,) = problems_of(with_strategy(notify={"webhook": "http://u:s3cret@h.example.com/"}))
    assert "s3cret" not in problem


def test_a_misspelt_key_is_suggested_and_both_problems_come_at_once() -> None:
    doc = with_strategy(exisitng="converge", notify={"webhook": "http://hooks.example.com/d"})
    assert problems_of(doc) == [
        "strategy.exisitng: unknown field (did you mean 'existing'?)",
        "strategy.notify.webhook: 'http://hooks.example.com/d' must be https:// (plain http "
        "only to loopback: 127.0.0.0/8, ::1, localhost)",
    ]
