"""A rollout's failure budgets, over what its runs carry: the fleet's and each region's.

The counts live in the carry (``RolloutCarry``), so a budget survives continue-as-new and a
``resume`` that grants a fresh one; this module only reads and moves them.
"""

from __future__ import annotations

from meshfleet.contract.payloads import RolloutCarry, RolloutInput
from workflows.layout import Walk


class FailureBudget:
    """The budgets of one rollout; ``walk`` says which region a target belongs to."""

    def __init__(self, inp: RolloutInput, carry: RolloutCarry, walk: Walk) -> None:
        self._inp = inp
        self._carry = carry
        self._walk = walk

    def count(self, index: int) -> str | None:
        """Count the failed target at ``index`` against its region; that region, if any."""
        region = self._walk.region_of(index)
        if region is not None:
            failed = self._carry.region_failed
            failed[region] = failed.get(region, 0) + 1
        return region

    def region_spent(self, region: str | None) -> bool:
        """``region`` has failed more targets than it tolerates."""
        return region is not None and self._carry.region_failed.get(region, 0) > self.allowed(
            region
        )

    def fleet_spent(self) -> bool:
        """The rollout has failed more targets than it tolerates."""
        return self._carry.counts.failed > self._carry.allowed_failures

    def over(self) -> bool:
        """Any budget is spent."""
        return self.fleet_spent() or any(
            self.region_spent(region) for region in self._carry.region_failed
        )

    def allowed(self, region: str) -> int:
        """The failures ``region`` tolerates now: its budget, or what ``resume`` granted."""
        allowed = self._carry.region_allowed.get(region)
        return self._region_budget(region) if allowed is None else allowed

    def refresh(self) -> None:
        """A fresh budget on top of what failed so far, for the fleet and each spent region."""
        carry = self._carry
        strategy = self._inp.strategy
        carry.allowed_failures = carry.counts.failed + strategy.failure_budget(self._inp.total)
        for region, failed in carry.region_failed.items():
            if failed > self.allowed(region):
                carry.region_allowed[region] = failed + self._region_budget(region)

    def spent_text(self) -> str:
        """``the failure budget of 2 and region r1's budget of 0``: the budgets that are spent."""
        carry = self._carry
        reasons = [
            f"region {region}'s budget of {self.allowed(region)}"
            for region in sorted(carry.region_failed)
            if self.region_spent(region)
        ]
        if self.fleet_spent() or not reasons:
            reasons.insert(0, f"the failure budget of {carry.allowed_failures}")
        return " and ".join(reasons)

    def _region_budget(self, region: str) -> int:
        strategy = self._inp.strategy
        if strategy.regions is None:
            return 0
        return strategy.regions.budget(strategy.max_failures, self._walk.size_of(region))
