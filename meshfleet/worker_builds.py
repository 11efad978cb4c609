"""Which meshfleet releases poll a task queue, so that a rollout only an 0.3.0 worker can run is
never handed to an older one.

A worker before 0.3.0 reads a rollout's ``action`` as ``create``: handed a ``converge`` rollout
(configuration converged, versions upgraded) in the middle of a rolling restart, it would adopt
every mesh as it stands and report the rollout done. Every meshfleet worker records its build
id (its version, unless ``MESHFLEET_BUILD_ID`` says otherwise), and Temporal lists each poller of
a task queue with it, so the starter looks before it starts such a rollout.

Temporal keeps a poller listed for minutes after its worker stopped; a live worker polls again
within a minute (its long poll lasts that long). So only pollers seen within ``FRESH`` count: a
worker stopped longer ago is gone, one seen since may be alive.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

FRESH = timedelta(seconds=75)
"""A poller seen this recently may be a live worker: one polls at least once a minute."""
FIRST_WITH_ACTIONS = (0, 3, 0)
"""The first release whose worker runs a rollout's ``action`` as it says."""

_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


class OlderWorkersError(Exception):
    """Workers of a release before 0.3.0 poll the task queue: the rollout was not started."""


def runs_actions(build_id: str) -> bool:
    """Whether a worker of ``build_id`` runs every action; a build id that is not a meshfleet
    version (an operator's own) is taken to be a current build."""
    match = _RELEASE.match(build_id)
    if match is None:
        return True
    return tuple(int(part) for part in match.groups()) >= FIRST_WITH_ACTIONS


async def older_builds(client: Client, task_queue: str, now: datetime | None = None) -> list[str]:
    """The build ids, sorted and each once, of the workers before 0.3.0 that polled
    ``task_queue`` for workflow tasks within ``FRESH``."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    since = (now or datetime.now(UTC)) - FRESH
    found: set[str] = set()
    for poller in resp.pollers:
        seen = poller.last_access_time.ToDatetime(tzinfo=UTC)
        build = poller.deployment_options.build_id or poller.worker_version_capabilities.build_id
        if seen >= since and build and not runs_actions(build):
            found.add(build)
    return sorted(found)
