"""What a simulator instance does: timings, credentials it accepts, and the faults it injects."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from meshfleet.asm.signer import AccessKey

DEFAULT_CREATE_SECONDS = 5.0
DEFAULT_DELETE_SECONDS = 2.0
DEFAULT_UPDATE_SECONDS = 2.0
DEFAULT_UPGRADE_STEP_SECONDS = 1.0
# Real IAM tokens live 24 h.
DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600.0


class FaultAction(StrEnum):
    """What a per-name rule does to a request for a mesh whose name matches its pattern.

    Create actions count the creates of a (project, name) for ``TIMES``; ``delete-failed`` and
    the update actions count the DELETEs or PUTs of that one mesh; the upgrade actions count the
    upgrade tasks of that one mesh (its first task is 1, a retried POST that made a second task
    is 2).
    """

    CREATE_FAILED = "create-failed"
    """The mesh is created and ends in ``CreateFailed`` instead of ``Running``."""
    FAIL_500_BEFORE = "500-before"
    """500 ASM.01040001 before anything is created."""
    FAIL_500_AFTER = "500-after"
    """The mesh is created, yet the client gets 500 ASM.01040001."""
    FAIL_429 = "429"
    """429 ASM.01429001 before anything is created."""
    DELETE_FAILED = "delete-failed"
    """A DELETE of the mesh is accepted, and the mesh ends ``DeleteFailed`` instead of gone
    (``TIMES`` counts the DELETEs of that mesh)."""
    UPDATE_FAILED = "update-failed"
    """A PUT of a new configuration is accepted, but the change never takes: the mesh stays
    ``Running`` and keeps echoing its old ``spec.config`` (``TIMES`` counts the PUTs of that
    mesh)."""
    UPDATE_500 = "update-500"
    """500 ASM.01040001 to a PUT; the configuration does not change (``TIMES`` counts the PUTs
    of that mesh)."""
    UPDATE_SLOW = "update-slow"
    """A PUT is accepted, and its change is echoed only after ``FaultConfig.slow_update_seconds``
    instead of ``update_seconds`` (``TIMES`` counts the PUTs of that mesh)."""
    UPDATE_LOST = "update-lost"
    """A PUT is accepted and takes, yet the client gets 500 ASM.01040001: the answer of a
    change that landed is lost (``TIMES`` counts the PUTs of that mesh)."""
    UPGRADE_PRECHECK_FAILED = "upgrade-precheck-failed"
    """An upgrade task's ``preCheck`` ends ``Failed`` with a message naming a cluster version
    the target does not support; the mesh stays ``Running`` at its version (``TIMES`` counts
    the upgrade tasks of that mesh)."""
    UPGRADE_DATAPLANE_FAILED = "upgrade-dataplane-failed"
    """An upgrade task's ``dataPlane`` ends ``Failed`` (pods did not become ready with the new
    sidecar) and the mesh ``UpgradeFailed``; a rollback is still possible (``TIMES`` counts the
    upgrade tasks of that mesh)."""
    UPGRADE_ROLLBACK_FAILED = "upgrade-rollback-failed"
    """An upgrade task's ``rollback`` ends ``Failed`` and the mesh ``RollbackFailed``; every
    rollback of that task fails while the rule holds (``TIMES`` counts the upgrade tasks of
    that mesh)."""
    UPGRADE_SLOW = "upgrade-slow"
    """A POST of an upgrade task creates it at once but answers only after
    ``FaultConfig.slow_upgrade_seconds``: the task exists while its creator still waits for the
    201 (``TIMES`` counts the upgrade tasks of that mesh)."""
    UPGRADE_LOST = "upgrade-lost"
    """A POST of an upgrade task creates it, yet the client gets 500 ASM.01040001: the 201 is
    lost, and with it the only answer that names the task's id (``TIMES`` counts the upgrade
    tasks of that mesh)."""


class NameRule(BaseModel):
    """A fault for requests whose mesh name matches a glob, e.g. ``flaky-*=500-before:2``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(min_length=1, description="fnmatch glob on metadata.name, e.g. fail-*.")
    action: FaultAction
    times: int | None = Field(
        default=None,
        ge=1,
        description="Only the first N creates of a (project, name), or DELETEs, PUTs or "
        "upgrade tasks of a mesh, are hit; None: every one.",
    )

    @classmethod
    def parse(cls, text: str) -> NameRule:
        """Parse ``PATTERN=ACTION[:TIMES]`` such as ``fail-*=create-failed``, ``flaky-*=429:2``.

        Raises:
            ValueError: the text does not have that shape or names an unknown action.
        """
        pattern, sep, rest = text.partition("=")
        if not sep or not pattern.strip():
            raise ValueError(f"rule {text!r} is not PATTERN=ACTION[:TIMES]")
        action, _, times = rest.strip().partition(":")
        try:
            kind = FaultAction(action)
        except ValueError:
            known = ", ".join(a.value for a in FaultAction)
            raise ValueError(f"rule {text!r}: action {action!r} is not one of {known}") from None
        if times and (not times.isdigit() or int(times) < 1):
            raise ValueError(f"rule {text!r}: TIMES {times!r} is not a positive integer")
        return cls(pattern=pattern.strip(), action=kind, times=int(times) if times else None)

    def matches(self, name: str) -> bool:
        """Whether the rule's glob matches a mesh name (case-sensitive, as names are lower-case)."""
        return fnmatch.fnmatchcase(name, self.pattern)

    def __str__(self) -> str:
        suffix = f":{self.times}" if self.times is not None else ""
        return f"{self.pattern}={self.action.value}{suffix}"


GONE = "gone"
"""What a ``LeaveRule`` names for a mesh that disappears instead of changing phase."""


class LeaveRule(BaseModel):
    """A mesh that leaves ``Running`` some time after reaching it, e.g. ``canary-*=Unknown@2``.

    What a canary that breaks after it was created looks like to whoever reads it again: its
    phase changes (to ``Unknown``, ``UpgradeFailed``, any phase the API may report), or it is
    gone (``gone``: the list no longer holds it and show answers 404). Applies to meshes a
    client's POST creates, not to seeded ones.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(min_length=1, description="fnmatch glob on metadata.name.")
    to: str = Field(
        pattern=r"^[A-Za-z]+$", description="The phase it moves to, or 'gone' to disappear."
    )
    after_s: float = Field(default=0.0, ge=0, description="Seconds after it became Running.")

    @classmethod
    def parse(cls, text: str) -> LeaveRule:
        """Parse ``PATTERN=PHASE[@SECONDS]`` such as ``canary-*=Unknown@2``, ``a-*=gone``.

        Raises:
            ValueError: the text does not have that shape.
        """
        pattern, sep, rest = text.partition("=")
        to, _, after = rest.strip().partition("@")
        if not sep or not pattern.strip() or not to.strip():
            raise ValueError(f"rule {text!r} is not PATTERN=PHASE[@SECONDS]")
        try:
            seconds = float(after) if after else 0.0
        except ValueError:
            raise ValueError(f"rule {text!r}: SECONDS {after!r} is not a number") from None
        return cls(pattern=pattern.strip(), to=to.strip(), after_s=seconds)

    def matches(self, name: str) -> bool:
        """Whether the rule's glob matches a mesh name."""
        return fnmatch.fnmatchcase(name, self.pattern)

    def __str__(self) -> str:
        return f"{self.pattern}={self.to}@{self.after_s:g}"


Probability = float


class FaultConfig(BaseModel):
    """Faults injected into the mesh API; changeable at runtime with ``PATCH /_sim/faults``.

    Probabilities are drawn from the simulator's seeded ``random.Random``, and only when they are
    above zero, so a run with a fixed seed and a fixed request sequence is reproducible.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    fail_500_before: Probability = Field(
        default=0.0, ge=0, le=1, description="P(500 on create, nothing created)."
    )
    fail_500_after: Probability = Field(
        default=0.0, ge=0, le=1, description="P(500 on create after the mesh was created)."
    )
    fail_429: Probability = Field(
        default=0.0, ge=0, le=1, description="P(429 ASM.01429001 on create, update or delete)."
    )
    retry_after: float | None = Field(
        default=None, ge=0, description="Seconds sent as Retry-After with injected 429s."
    )
    create_failed: Probability = Field(
        default=0.0, ge=0, le=1, description="P(a created mesh ends CreateFailed)."
    )
    latency: float = Field(default=0.0, ge=0, description="Seconds added to every mesh API call.")
    latency_jitter: float = Field(
        default=0.0, ge=0, description="Up to this many extra seconds, uniformly drawn."
    )
    rules: list[NameRule] = Field(default_factory=list, description="Per-name rules, in order.")
    slow_update_seconds: float = Field(
        default=30.0, ge=0, description="How long an update an update-slow rule hits takes."
    )
    slow_upgrade_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long the POST of an upgrade task an upgrade-slow rule hits waits "
        "before answering (the task exists meanwhile).",
    )
    leave: list[LeaveRule] = Field(
        default_factory=list,
        description="Meshes that leave Running (or vanish) a while after reaching it; the first "
        "matching rule applies.",
    )

    @field_validator("rules", mode="before")
    @classmethod
    def _rules_from_text(cls, value: Any) -> Any:
        # The CLI and PATCH bodies may give rules as "PATTERN=ACTION[:TIMES]" strings.
        if isinstance(value, list):
            return [NameRule.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("leave", mode="before")
    @classmethod
    def _leave_from_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [LeaveRule.parse(v) if isinstance(v, str) else v for v in value]
        return value

    def leave_rule(self, name: str) -> LeaveRule | None:
        """The first ``leave`` rule whose pattern matches ``name``, if any."""
        return next((r for r in self.leave if r.matches(name)), None)

    def rules_for(self, name: str, action: FaultAction) -> list[NameRule]:
        """The rules of one action whose pattern matches ``name``."""
        return [r for r in self.rules if r.action is action and r.matches(name)]


@dataclass
class SimulatorConfig:
    """Everything a simulator instance is started with; secrets never appear in ``repr``.

    Attributes:
        create_seconds: Seconds a new mesh stays ``Creating`` before ``Running``/``CreateFailed``.
        delete_seconds: Seconds a deleted mesh stays ``Deleting`` before it is gone.
        update_seconds: Seconds after an accepted PUT before the mesh echoes the new
            ``spec.config``; it stays ``Running`` with the old one meanwhile.
        upgrade_step_seconds: Seconds each step of an upgrade task runs (``preCheck``,
            ``controlPlane``, ``dataPlane``, ``finish`` and ``rollback`` alike) before it ends
            ``Succeeded`` (or ``Failed`` under a rule).
        auth_enabled: False accepts every request unauthenticated (``--no-auth``).
        tokens: Static tokens accepted as ``X-Auth-Token`` for every project.
        access_keys: AK/SK pairs whose ``SDK-HMAC-SHA256`` signatures are accepted.
        iam_users: user name -> password, for ``POST /v3/auth/tokens``.
        iam_domain: When set, the account (domain) name a token request must name.
        token_ttl_seconds: Lifetime of tokens issued by ``POST /v3/auth/tokens``.
        faults: Faults to inject; replaceable at runtime.
        seed: Seed of the fault ``random.Random``; None seeds from the OS.
    """

    create_seconds: float = DEFAULT_CREATE_SECONDS
    delete_seconds: float = DEFAULT_DELETE_SECONDS
    update_seconds: float = DEFAULT_UPDATE_SECONDS
    upgrade_step_seconds: float = DEFAULT_UPGRADE_STEP_SECONDS
    auth_enabled: bool = True
    tokens: tuple[str, ...] = field(default=(), repr=False)
    access_keys: tuple[AccessKey, ...] = ()
    iam_users: Mapping[str, str] = field(default_factory=dict, repr=False)
    iam_domain: str | None = None
    token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int | None = None

    def __post_init__(self) -> None:
        times = (
            self.create_seconds,
            self.delete_seconds,
            self.update_seconds,
            self.upgrade_step_seconds,
        )
        if min(times) < 0:
            raise ValueError(
                "create_seconds, delete_seconds, update_seconds and upgrade_step_seconds "
                "must not be negative"
            )
        if self.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be positive")
        if any(not t for t in self.tokens):
            raise ValueError("a static token must not be empty")

    @property
    def has_credentials(self) -> bool:
        """Whether any request could authenticate (else every mesh call answers 401)."""
        return bool(self.tokens or self.access_keys or self.iam_users)

    def auth_summary(self) -> str:
        """Which auth methods are on, for the start-up line; names counts only, never secrets."""
        if not self.auth_enabled:
            return "auth off"
        parts = []
        if self.tokens:
            parts.append(f"{len(self.tokens)} static token(s)")
        if self.access_keys:
            parts.append(f"AK/SK {', '.join(k.ak[:4] + '…' for k in self.access_keys)}")
        if self.iam_users:
            parts.append(f"IAM users {', '.join(sorted(self.iam_users))}")
        return "auth: " + ("; ".join(parts) if parts else "on, but no credentials configured")
