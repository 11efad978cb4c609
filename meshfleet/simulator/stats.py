"""Counters of what the simulator saw and did, for assertions in tests and for ``/_sim/stats``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Operation names double as stats keys and aiohttp route names.
CREATE = "create"
SHOW = "show"
LIST = "list"
DELETE = "delete"
UPDATE = "update"
IAM_TOKEN = "iam_token"  # noqa: S105 - an operation name, not a secret
# The upgrade task's calls, named as meshfleet's metrics name them.
CREATE_UPGRADE = "create_upgrade"
SHOW_UPGRADE = "show_upgrade"
MOVE_UPGRADE = "move_upgrade"
SHOW_UPGRADE_JOB = "show_upgrade_job"
UPGRADE_OPERATIONS = (CREATE_UPGRADE, SHOW_UPGRADE, MOVE_UPGRADE, SHOW_UPGRADE_JOB)
MESH_OPERATIONS = (CREATE, SHOW, LIST, UPDATE, DELETE, *UPGRADE_OPERATIONS)


@dataclass
class NameStats:
    """What happened to one mesh name in one project."""

    posts: int = 0
    """Create requests that named it (valid JSON and a valid body)."""
    creations: int = 0
    """Meshes of that name actually created by a client's POST (seeded meshes do not count)."""


@dataclass
class Stats:
    """Counters since start or the last ``/_sim/reset``."""

    requests: Counter[str] = field(default_factory=Counter)
    """Requests per operation (create, show, list, update, delete, the four upgrade calls,
    iam_token), whatever the outcome."""
    by_status: Counter[int] = field(default_factory=Counter)
    """Answers of the mesh API (not IAM, not admin) per HTTP status."""
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    """Answers per operation and HTTP status (IAM included)."""
    faults: Counter[str] = field(default_factory=Counter)
    """Injected faults per kind: 500-before, 500-after, 429, create-failed, latency."""
    names: dict[tuple[str, str], NameStats] = field(default_factory=dict)
    """Per (project_id, mesh name)."""
    deletes_by_uid: Counter[str] = field(default_factory=Counter)
    """DELETE requests that reached an existing mesh, per mesh uid (a 404 is not counted)."""
    updates_by_uid: Counter[str] = field(default_factory=Counter)
    """PUT requests with a valid body that reached an existing mesh, per mesh uid (a 404 or a
    400 is not counted; a 409 for a mesh that is not Running is)."""
    upgrade_posts_by_uid: Counter[str] = field(default_factory=Counter)
    """Upgrade-task POSTs with a valid body that named an existing mesh, per mesh uid (a 409
    is counted, a 404 or a 400 is not)."""
    upgrade_tasks_by_uid: Counter[str] = field(default_factory=Counter)
    """Upgrade tasks created, per mesh uid (whatever their POST was answered)."""
    upgrade_puts_by_step: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Upgrade-task PUTs with a valid body that reached an existing task, per (mesh uid, step
    named); a 409 and a repeat of the step in progress are counted too."""

    def record_answer(self, operation: str, status: int) -> None:
        """Count one answer of an operation."""
        self.requests[operation] += 1
        self.by_operation.setdefault(operation, Counter())[status] += 1
        if operation in MESH_OPERATIONS:
            self.by_status[status] += 1

    def name(self, project_id: str, name: str) -> NameStats:
        """The counters of one (project, name), created on first use."""
        return self.names.setdefault((project_id, name), NameStats())

    def posts(self, project_id: str, name: str) -> int:
        """Create requests for that name in that project."""
        found = self.names.get((project_id, name))
        return found.posts if found else 0

    def creations(self, project_id: str, name: str) -> int:
        """Meshes of that name created in that project: the number tests hold to 'at most once'."""
        found = self.names.get((project_id, name))
        return found.creations if found else 0

    def deletes(self, uid: str) -> int:
        """DELETE requests that reached the mesh ``uid``: the number rollback tests hold to 1."""
        return self.deletes_by_uid[uid]

    def updates(self, uid: str) -> int:
        """PUT requests that reached the mesh ``uid``: the number tests hold to 'one PUT each'."""
        return self.updates_by_uid[uid]

    def upgrade_posts(self, uid: str) -> int:
        """Upgrade-task POSTs for the mesh ``uid`` that got past its lookup."""
        return self.upgrade_posts_by_uid[uid]

    def upgrade_tasks(self, uid: str) -> int:
        """Upgrade tasks created for the mesh ``uid``: the number tests hold to 'exactly one'."""
        return self.upgrade_tasks_by_uid[uid]

    def upgrade_puts(self, uid: str, step: str) -> int:
        """Upgrade-task PUTs for the mesh ``uid`` naming ``step`` (``rollback`` included): the
        number tests hold to 'one rollback each'."""
        return self.upgrade_puts_by_step[(uid, step)]

    def to_json(self) -> dict[str, Any]:
        """The ``GET /_sim/stats`` body (status codes become string keys)."""
        return {
            "posts": self.requests[CREATE],
            "shows": self.requests[SHOW],
            "lists": self.requests[LIST],
            "deletes": self.requests[DELETE],
            "deletes_by_uid": dict(sorted(self.deletes_by_uid.items())),
            "puts": self.requests[UPDATE],
            "puts_by_uid": dict(sorted(self.updates_by_uid.items())),
            "upgrade_posts": self.requests[CREATE_UPGRADE],
            "upgrade_posts_by_uid": dict(sorted(self.upgrade_posts_by_uid.items())),
            "upgrade_tasks_by_uid": dict(sorted(self.upgrade_tasks_by_uid.items())),
            "upgrade_puts": self.requests[MOVE_UPGRADE],
            "upgrade_puts_by_uid": self._upgrade_puts_json(),
            "upgrade_shows": self.requests[SHOW_UPGRADE],
            "upgrade_job_shows": self.requests[SHOW_UPGRADE_JOB],
            "iam_tokens": self.requests[IAM_TOKEN],
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_operation": {
                op: {str(k): v for k, v in sorted(counts.items())}
                for op, counts in sorted(self.by_operation.items())
            },
            "faults": dict(sorted(self.faults.items())),
            "names": [
                {"project_id": p, "name": n, "posts": s.posts, "creations": s.creations}
                for (p, n), s in sorted(self.names.items())
            ],
        }

    def _upgrade_puts_json(self) -> dict[str, dict[str, int]]:
        by_uid: dict[str, dict[str, int]] = {}
        for (uid, step), count in sorted(self.upgrade_puts_by_step.items()):
            by_uid.setdefault(uid, {})[step] = count
        return by_uid
