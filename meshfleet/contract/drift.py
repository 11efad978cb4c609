"""The Temporal contract of a drift check: names, ids, payloads and the report.

A drift schedule (``drift/NAME``) runs ``DriftCheckWorkflow`` now and then over a manifest's
targets, read-only: every target is judged against the mesh that stands for it, as ``plan``
judges it, and the result is a ``DriftReport``. The schedule lives for months, longer than the
namespace keeps a closed workflow, so its targets are kept in page workflows that stay Running
(``DriftTargetPageWorkflow``): an open workflow is never deleted by retention, and its input
stays readable from the first event of its history without any worker.

Imported inside the workflow sandbox: pydantic, ``meshfleet.models`` and ``meshfleet.drift``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from meshfleet.contract.payloads import PAGE_SIZE, Contract
from meshfleet.drift import FieldChange
from meshfleet.models import MAX_REPORTED_FAILURES, MeshTarget

DRIFT_CHECK_WORKFLOW = "DriftCheckWorkflow"
DRIFT_PAGE_WORKFLOW = "DriftTargetPageWorkflow"
CHECK_DRIFT = "check_drift"
NOTIFY_DRIFT = "notify_drift"

DRIFT_PAGE_SIZE = PAGE_SIZE
"""Targets per stored page of a drift schedule: the size a rollout's pages have."""
DIGEST_CHARS = 12
"""How much of the targets' digest names their pages: enough to tell two manifests apart."""


def drift_schedule_id(name: str) -> str:
    """The id of the drift schedule ``name``."""
    return f"drift/{name}"


def drift_check_workflow_id(name: str) -> str:
    """The workflow id the schedule gives each check (Temporal appends the time it runs)."""
    return f"drift/{name}/check"


def drift_pages_prefix(name: str) -> str:
    """What the workflow id of every stored page of the schedule ``name`` starts with."""
    return f"drift/{name}/targets/"


def short_digest(digest: str) -> str:
    """``sha256:0a1b…`` -> its first ``DIGEST_CHARS`` hex digits."""
    return digest.rpartition(":")[2][:DIGEST_CHARS]


def drift_page_workflow_id(name: str, digest: str, page: int) -> str:
    """The workflow id of one stored page of a drift schedule's targets: a changed manifest
    (another digest) is stored under other ids, so the pages of the one before stay readable
    until the schedule no longer names them."""
    return f"{drift_pages_prefix(name)}{short_digest(digest)}/{page}"


class DriftPage(Contract):
    """One page of a drift schedule's targets: the input of a page workflow that stays open."""

    name: str
    digest: str
    page: int
    targets: list[MeshTarget]


class DriftPages(Contract):
    """Where a drift schedule's targets are stored: ``total`` of them in pages of
    ``page_size``, under the ids of ``name`` and ``digest``. Input of ``check_drift``."""

    name: str
    digest: str
    total: int = Field(ge=1)
    page_size: int = Field(default=DRIFT_PAGE_SIZE, ge=1)

    @property
    def pages(self) -> int:
        """How many pages hold the targets."""
        return -(-self.total // self.page_size)

    def page_ids(self) -> list[str]:
        """The workflow id of every page, in order."""
        return [drift_page_workflow_id(self.name, self.digest, n) for n in range(self.pages)]


class DriftCheckInput(DriftPages):
    """Input of ``DriftCheckWorkflow``, as the schedule starts it: where the targets are, and
    where to report drift. Never a credential: the webhook's token is the worker's."""

    webhook: str | None = Field(
        default=None, description="strategy.notify.webhook: POSTed the report when drift is found."
    )


DriftJudgement = Literal["missing", "update", "upgrade", "downgrade", "conflict", "error"]
"""How a target that is not in sync differs: no mesh stands for it; its configuration differs;
its mesh runs an older or a newer version; another mesh is in its way; its project's list call
was refused."""
DRIFT_JUDGEMENTS: tuple[DriftJudgement, ...] = (
    "missing",
    "update",
    "upgrade",
    "downgrade",
    "conflict",
    "error",
)


class DriftChange(Contract):
    """One field in which a mesh differs from its target: what it has, what the manifest wants
    (None: absent)."""

    path: str
    before: Any = None
    after: Any = None

    def text(self) -> str:
        """``config.a.b: 1 -> 10``."""
        return FieldChange(self.path, self.before, self.after).text()


class DriftedTarget(Contract):
    """A target that is not in sync, and how."""

    project_id: str
    region: str
    cluster_id: str
    mesh_name: str
    judgement: DriftJudgement
    changes: list[DriftChange] = Field(default_factory=list)
    mesh_version: str | None = None
    """The version the mesh runs, as it echoes it (None: no mesh, or none echoed)."""
    detail: str = ""
    """In words: the versions of an upgrade, what is in the way, why the list was refused."""

    def line(self) -> str:
        """``update     ap-southeast-3  P  mesh-a  cluster c-a  2 fields differ, phase Running``:
        two spaces part the parts, as in every meshfleet table."""
        parts = [
            f"{self.judgement:<9}",
            self.region,
            self.project_id,
            self.mesh_name,
            f"cluster {self.cluster_id}",
        ]
        return "  ".join([*parts, self.detail] if self.detail else parts)


class DriftNotice(Contract):
    """What the notify webhook answered (``sent`` False: the worker may not post to it)."""

    sent: bool
    status: int | None = None
    excerpt: str = ""


class DriftReport(Contract):
    """How a fleet stands against its manifest: a count of every judgement over all targets,
    and the targets that are not in sync (the first ``MAX_REPORTED_FAILURES`` of them)."""

    total: int = 0
    in_sync: int = 0
    missing: int = 0
    update: int = 0
    upgrade: int = 0
    downgrade: int = 0
    conflict: int = 0
    error: int = 0
    drifted: list[DriftedTarget] = Field(default_factory=list)
    """The targets not in sync, in the order they were judged, at most
    ``MAX_REPORTED_FAILURES``; the counts stay whole."""
    checked_at: str | None = None
    """When the meshes were listed (ISO 8601, UTC)."""
    notified: DriftNotice | None = None
    """A scheduled check that found drift and has a webhook: what the webhook answered."""

    @property
    def not_in_sync(self) -> int:
        """Targets that differ from the manifest in any way."""
        return self.total - self.in_sync

    @property
    def unlisted(self) -> int:
        """Targets not in sync that ``drifted`` does not list."""
        return max(0, self.not_in_sync - len(self.drifted))

    def counts(self) -> dict[str, int]:
        """Each judgement's count, ``in_sync`` first."""
        return {"in_sync": self.in_sync} | {j: getattr(self, j) for j in DRIFT_JUDGEMENTS}

    def summary(self) -> str:
        """``5 targets: 2 in sync, 3 drifted (1 missing, 1 update, 1 upgrade)``."""
        head = _count(self.total, "target")
        if not self.not_in_sync:
            return f"{head}: all in sync"
        parts = ", ".join(f"{getattr(self, j)} {j}" for j in DRIFT_JUDGEMENTS if getattr(self, j))
        return f"{head}: {self.in_sync} in sync, {self.not_in_sync} drifted ({parts})"

    def lines(self, limit: int | None = None) -> list[str]:
        """The summary, then each listed target (its fields indented beneath it), the first
        ``limit`` of them when given, and how many more there are."""
        shown = self.drifted if limit is None else self.drifted[:limit]
        lines = [self.summary()]
        for target in shown:
            lines.append(target.line())
            lines += [f"    {change.text()}" for change in target.changes]
        more = self.not_in_sync - len(shown)
        if more > 0:
            lines.append(f"… and {more} more")
        return lines

    def document(self) -> dict[str, Any]:
        """The report as JSON data: counts, then ``drifted`` and ``unlisted``.

        The ``--json`` document of ``meshfleet drift`` and the notify webhook's body both hold
        these keys, in this order.
        """
        return {
            "total": self.total,
            "not_in_sync": self.not_in_sync,
            **self.counts(),
            "drifted": [
                {
                    "project_id": t.project_id,
                    "region": t.region,
                    "cluster_id": t.cluster_id,
                    "mesh_name": t.mesh_name,
                    "judgement": t.judgement,
                    "changes": [c.model_dump(mode="json") for c in t.changes],
                    "mesh_version": t.mesh_version,
                    "detail": t.detail,
                }
                for t in self.drifted
            ],
            "unlisted": self.unlisted,
        }


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class NotifyDriftInput(Contract):
    """Input of ``notify_drift``: the report of one check, for the schedule's webhook."""

    name: str
    webhook: str
    report: DriftReport
    workflow_id: str | None = None


REPORTED_DRIFT = MAX_REPORTED_FAILURES
"""How many drifted targets a report lists, as a rollout's report lists its failures."""
