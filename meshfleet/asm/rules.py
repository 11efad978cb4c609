"""The values that name things in ASM calls, each rule stated once: project id, region, mesh name,
mesh id, and the ids of an upgrade task and its jobs.

Each of these values ends up in a URL path, a host name, a token scope or a workflow id, so it is
matched in full over explicit ASCII classes: that refuses '/', '..', '%', whitespace, a trailing
newline and Unicode look-alikes (Cyrillic letters, fullwidth digits). The manifest models, the
client, the simulator and the CLI all check a value with the rule below and say the same thing
when it is broken; ``ProjectId``, ``Region``, ``MeshName`` and ``MeshId`` carry the rules into
pydantic models.

Imported inside the Temporal workflow sandbox (through ``meshfleet.models``): pydantic and the
standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator

from meshfleet.asm.errors import AsmValidationError

_SHOWN_CHARS = 60


def shown(value: object) -> str:
    """``repr`` of a refused value, cut short: whatever a caller sent, a message stays one line."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


@dataclass(frozen=True)
class Rule:
    """A value's shape and the one sentence that says it was not met.

    Attributes:
        field: The name the value goes by in the API (``project_id``); client errors start with it.
        pattern: Matched against the whole value.
        message: What the value must be, written to follow the value: ``'x' must be ...``.
        max_length: A length cap the pattern does not state, if any.
    """

    field: str
    pattern: re.Pattern[str]
    message: str
    max_length: int | None = None

    def matches(self, value: object) -> bool:
        """Whether ``value`` is a string of this shape."""
        return (
            isinstance(value, str)
            and (self.max_length is None or len(value) <= self.max_length)
            and self.pattern.fullmatch(value) is not None
        )

    def problem(self, value: object) -> str | None:
        """``'<value>' <message>`` when ``value`` breaks the rule, else None."""
        return None if self.matches(value) else f"{shown(value)} {self.message}"

    def check(self, value: str) -> str:
        """Return ``value`` if it keeps the rule.

        Raises:
            AsmValidationError: ``<field> '<value>' <message>``; the value never reaches a URL.
        """
        problem = self.problem(value)
        if problem is not None:
            raise AsmValidationError(f"{self.field} {problem}")
        return value

    def validate(self, value: str) -> str:
        """The pydantic validator: the same problem, raised as a plain ``ValueError``."""
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


PROJECT_ID = Rule(
    "project_id", re.compile(r"[0-9a-f]{32}"), "must be 32 lower-case hexadecimal characters"
)
# A region becomes part of a host name, so only the shape Huawei uses may pass (cn-north-4,
# ap-southeast-3, eu-west-101, la-north-2): nothing that could add a label, a port or a path.
REGION = Rule(
    "region",
    re.compile(r"[a-z]{2,}(?:-[a-z0-9]+){1,3}"),
    "is not a region name like ap-southeast-3 (at most 40 characters)",
    max_length=40,
)
# A mesh id is the uid ASM generated; meshfleet accepts what is safe in a path segment.
MESH_ID = Rule(
    "mesh_id", re.compile(r"[A-Za-z0-9-]{1,64}"), "must be 1 to 64 ASCII letters, digits or '-'"
)
# The ids of an upgrade task and of the job behind a step are ASM's uids too, and go into a path
# the same way; one shape, each rule naming its own field.
UPGRADE_TASK_ID = Rule("task_id", MESH_ID.pattern, MESH_ID.message)
UPGRADE_JOB_ID = Rule("job_id", MESH_ID.pattern, MESH_ID.message)

# \Z, not $: $ also matches before a trailing newline, so "abcd\n" would pass as a name.
MESH_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{2,62}[a-z0-9]\Z")


def mesh_name_problem(name: str) -> str | None:
    """Say what is wrong with a mesh name, or None when it is valid.

    The API's name rule has several parts, and a manifest author fixes a name faster when told
    which part it breaks, so this rule says which.
    """
    if not 4 <= len(name) <= 64:
        return f"must be 4 to 64 characters, got {len(name)}"
    if not name[0].isascii() or not name[0].islower() or not name[0].isalpha():
        return "must start with a lower-case letter"
    if name.endswith("-"):
        return "must not end with '-'"
    if not MESH_NAME_RE.match(name):
        return "may contain only lower-case letters, digits and '-'"
    return None


def _mesh_name(name: str) -> str:
    problem = mesh_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def check_project_id(project_id: str) -> str:
    """Return ``project_id`` if it is 32 lower-case hex characters.

    Raises:
        AsmValidationError: naming ``project_id``; the value never reaches a URL.
    """
    return PROJECT_ID.check(project_id)


def check_region(region: str) -> str:
    """Return ``region`` if it has the shape of a Huawei Cloud region name.

    Raises:
        AsmValidationError: naming ``region``; the value never reaches a host name.
    """
    return REGION.check(region)


def check_mesh_id(mesh_id: str) -> str:
    """Return ``mesh_id`` if it is 1-64 ASCII letters, digits or '-'.

    Raises:
        AsmValidationError: naming ``mesh_id``; the value never reaches a URL.
    """
    return MESH_ID.check(mesh_id)


def check_upgrade_id(upgrade_id: str, field: Literal["task_id", "job_id"] = "task_id") -> str:
    """Return ``upgrade_id`` (an upgrade task's ``metadata.uid``, or with ``field="job_id"`` the
    ``status.jobId`` of one of its steps) if it is 1-64 ASCII letters, digits or '-'.

    Raises:
        AsmValidationError: naming ``field``; the value never reaches a URL.
    """
    rule = UPGRADE_JOB_ID if field == UPGRADE_JOB_ID.field else UPGRADE_TASK_ID
    return rule.check(upgrade_id)


def check_mesh_name(name: str) -> str:
    """Return ``name`` if it is a valid mesh name.

    Raises:
        AsmValidationError: naming ``name`` and the part of the rule it breaks.
    """
    problem = mesh_name_problem(name) if isinstance(name, str) else "must be a string"
    if problem:
        raise AsmValidationError(f"name {shown(name)} {problem}")
    return name


ProjectId = Annotated[str, AfterValidator(PROJECT_ID.validate)]
Region = Annotated[str, AfterValidator(REGION.validate)]
MeshId = Annotated[str, AfterValidator(MESH_ID.validate)]
MeshName = Annotated[str, AfterValidator(_mesh_name)]
