"""Workflow and activity payloads across releases: what one release writes, the other reads."""

from __future__ import annotations

from meshfleet.contract.payloads import RolloutCarry, RolloutInput


def test_a_payload_from_a_newer_release_is_read_without_its_new_fields() -> None:
    # A worker of this release may be handed an input or result that the next release wrote
    # (two releases side by side during a rolling restart): unknown fields must not fail it.
    newer = {
        "rollout_id": "r1",
        "total": 1,
        "a_field_of_a_later_release": {"any": "shape"},
        "carry": {"next_index": 1, "written_by": "9.9.9", "also_new": 3},
        "strategy": {"window": 2, "new_strategy_knob": True},
    }
    inp = RolloutInput.model_validate(newer)
    assert inp.carry is not None
    assert (inp.carry.next_index, inp.carry.written_by, inp.strategy.window) == (1, "9.9.9", 2)
    assert "a_field_of_a_later_release" not in inp.model_dump()


def test_a_carry_written_by_release_0_1_0_still_validates() -> None:
    # 0.1.0 wrote no ``written_by``: its continue-as-new inputs read as "unknown writer".
    carry = RolloutCarry.model_validate({"next_index": 3, "runs": 2, "in_flight": {"mesh/x": 2}})
    assert (carry.written_by, carry.runs, carry.in_flight) == (None, 2, {"mesh/x": 2})
