"""Rollout progress built by hand, for tests of what is shown of it (lines, documents, codes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshfleet.models import RolloutProgress, RolloutState

_NOTHING_COUNTED: dict[str, Any] = {
    "rollout_id": "rollout",
    "state": RolloutState.RUNNING,
    "total": 0,
    "created": 0,
    "adopted": 0,
    "failed": 0,
    "cancelled": 0,
    "in_flight": 0,
    "pending": 0,
    "wave": 1,
    "waves": 1,
    "failure_budget": 0,
    "seconds": 0.0,
}


def progress_factory(**defaults: Any) -> Callable[..., RolloutProgress]:
    """A maker of ``RolloutProgress``: ``defaults`` over a running rollout with nothing counted,
    and each call's fields over those.

    A test module names the rollout its expectations are written against once, and each test
    says only what differs from it: ``progress = progress_factory(rollout_id="rel-7", total=40)``
    then ``progress(state=RolloutState.HALTED)``.
    """
    base = _NOTHING_COUNTED | defaults
    RolloutProgress.model_validate(base)  # a wrong default fails where it is written

    def progress(**fields: Any) -> RolloutProgress:
        return RolloutProgress.model_validate(base | fields)

    return progress
