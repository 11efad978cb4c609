"""The ``strategy`` of a manifest: each part a model on the payload model it becomes.

``Strategy`` is a ``RolloutStrategy`` (so are its rules) spelt as the manifest spells it: a
duration drops its ``_s`` and may be written ``20s``; ``verify: true`` is the re-read alone.
"""

from __future__ import annotations

from typing import Any, get_args
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from meshfleet.manifest import descriptions
from meshfleet.manifest.kinds import (
    LIST,
    MAPPING,
    NUMBER,
    TEXT,
    WHOLE_NUMBER,
    Kind,
    checked,
    count_or_text,
    durations,
    durations_of,
    is_count,
)
from meshfleet.manifest.parts import (
    COUNT_OR_PERCENT_SCHEMA,
    PERCENT_SCHEMA,
    REGION_SCHEMA,
    Part,
    part_config,
)
from meshfleet.manifest.problems import did_you_mean, shown
from meshfleet.models import (
    ExistingMode,
    FinalizeMode,
    NotifySpec,
    RegionOrder,
    RetryPolicySpec,
    RolloutStrategy,
    UpgradeStrategy,
    VerifySpec,
)
from meshfleet.webhook_allowlist import is_loopback
from meshfleet.webhook_allowlist import shown as shown_url

_COUNT_OR_PERCENT = Kind("a count or a percentage like '5%'", count_or_text)


class CreateRetry(Part, RetryPolicySpec):
    """strategy.create_retry: backoff of the create POST on 429, 5xx and connection errors."""

    model_config = part_config(descriptions.CREATE_RETRY)

    _durations_kind = durations(*durations_of(RetryPolicySpec))
    _backoff_kind = checked("backoff", kind=NUMBER)
    _attempts_kind = checked("max_attempts", kind=WHOLE_NUMBER)


def plain_http_problem(url: str) -> str | None:
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


_WEBHOOK = Kind("an http(s) URL", lambda v: v is None or TEXT.test(v))


def _https_or_loopback(cls: type, webhook: str | None) -> str | None:
    # Said when the manifest is read, long before a worker would come to post there.
    problem = None if webhook is None else plain_http_problem(webhook)
    if problem is not None:
        raise ValueError(problem)
    return webhook


class Verify(Part, VerifySpec):
    """strategy.verify: read each wave's meshes again after its soak; optionally ask a service."""

    model_config = part_config(descriptions.VERIFY)
    manifest_kind = Kind("true, false or a mapping like {webhook: URL}", MAPPING.test)

    _webhook_kind = checked("webhook", kind=_WEBHOOK)
    _plain_http = field_validator("webhook")(_https_or_loopback)


class Notify(Part, NotifySpec):
    """strategy.notify: where a drift check reports the drift it found."""

    model_config = part_config(descriptions.NOTIFY)
    manifest_kind = Kind("a mapping like {webhook: URL}", MAPPING.test)

    _webhook_kind = checked("webhook", kind=_WEBHOOK)
    _plain_http = field_validator("webhook")(_https_or_loopback)


EXISTING_MODES: tuple[str, ...] = get_args(ExistingMode)
FINALIZE_MODES: tuple[str, ...] = get_args(FinalizeMode)


def _one_of(modes: tuple[str, ...]) -> Any:
    """A before-validator of a mode: one of ``modes``, a near miss named."""
    words = f"{', '.join(modes[:-1])} or {modes[-1]}"

    def mode(cls: type, value: Any) -> Any:
        # The model's own words ("Input should be 'adopt', ...") name no near miss; a mode
        # misspelt is common enough (require-match, Converge, after-rollout) to be worth one.
        if not isinstance(value, str):
            raise Kind(words, TEXT.test).error(value)
        if value not in modes:
            raise ValueError(f"must be {words}, not {shown(value)}{did_you_mean(value, modes)}")
        return value

    return mode


class Upgrade(Part, UpgradeStrategy):
    """strategy.upgrade: how a rollout that upgrades meshes finishes their upgrades."""

    model_config = part_config(descriptions.UPGRADE)
    manifest_kind = Kind("a mapping like {finalize: manual}", MAPPING.test)

    _finalize_kind = field_validator("finalize", mode="before")(_one_of(FINALIZE_MODES))


class Regions(Part, RegionOrder):
    """strategy.regions: regions in order, each with a failure budget of its own."""

    model_config = part_config(
        descriptions.REGIONS,
        extra={
            "order": {"items": REGION_SCHEMA},
            "max_failures": {"anyOf": [*COUNT_OR_PERCENT_SCHEMA, {"type": "null"}]},
        },
    )
    manifest_kind = Kind(
        "a mapping like {order: [ap-southeast-3, eu-west-101], mode: sequential}", MAPPING.test
    )

    _order_kind = checked(
        "order", kind=Kind("a list of regions", LIST.test), items=Kind("a region", TEXT.test)
    )
    _mode_kind = checked("mode", kind=Kind("sequential or parallel", TEXT.test))
    _max_failures_kind = checked("max_failures", kind=_COUNT_OR_PERCENT)


def _or_true_false(schema: JsonDict) -> None:
    schema["anyOf"] = [{"type": "boolean"}, *schema["anyOf"]]  # type: ignore[misc]


class Strategy(Part, RolloutStrategy):
    """strategy: how the rollout walks its targets: waves, window, failure budget, timings."""

    model_config = part_config(
        descriptions.STRATEGY,
        extra={
            "waves": {"items": {"anyOf": [{"type": "integer", "minimum": 1}, PERCENT_SCHEMA]}},
            "max_failures": {"anyOf": COUNT_OR_PERCENT_SCHEMA},
            "approve_after": {"items": {"type": "integer", "minimum": 1}},
        },
        nullable=("approve_after", "upgrade"),
    )

    create_retry: CreateRetry = Field(default_factory=CreateRetry)
    verify: Verify | None = Field(default=None, json_schema_extra=_or_true_false)
    regions: Regions | None = None
    notify: Notify | None = None
    upgrade: Upgrade = Field(default_factory=Upgrade)

    _existing_kind = field_validator("existing", mode="before")(_one_of(EXISTING_MODES))

    _durations_kind = durations(*durations_of(RolloutStrategy))
    _window_kind = checked("window", kind=WHOLE_NUMBER)
    _waves_kind = checked(
        "waves",
        kind=Kind("a list like [1, '10%', '100%']", LIST.test),
        items=Kind("a count or a percentage like '10%'", count_or_text),
    )
    _max_failures_kind = checked("max_failures", kind=_COUNT_OR_PERCENT)
    _gates_kind = checked(
        "approve_after",
        kind=Kind("a list of wave numbers like [1]", lambda v: v is None or LIST.test(v)),
        items=Kind("a wave number like 1", is_count),
    )

    @field_validator("verify", "approve_after", "upgrade", mode="before")
    @classmethod
    def _shorthands(cls, value: Any, info: ValidationInfo) -> Any:
        # `verify: true` asks for the re-read alone; false or null, for none. No gates is [].
        # `upgrade:` with every key under it commented out is the key left out.
        if info.field_name == "approve_after":
            return [] if value is None else value
        if info.field_name == "upgrade":
            return {} if value is None else value
        return {} if value is True else None if value is False else value
