"""What a rollout shows of itself: its progress report, the UI's details line and banners, and
why it refuses a request.

Pure functions of the rollout's input, carry and current wave, so that the query, the Temporal
UI and the update validators say the same thing in the same words.
"""

from __future__ import annotations

from datetime import datetime

from meshfleet.contract.payloads import RolloutCarry, RolloutInput
from meshfleet.models import MAX_REPORTED_FAILURES, RolloutProgress, RolloutState, UpgradedMesh
from meshfleet.waves import Wave


def progress_report(
    inp: RolloutInput, carry: RolloutCarry, wave: Wave, now: datetime
) -> RolloutProgress:
    """What the ``progress`` query answers: counts by outcome, in flight, pending, wave, state."""
    counts = carry.counts
    return RolloutProgress(
        rollout_id=inp.rollout_id,
        state=carry.state,
        total=inp.total,
        created=counts.created,
        adopted=counts.adopted,
        failed=counts.failed,
        cancelled=counts.cancelled,
        in_flight=len(carry.in_flight),
        pending=inp.total - carry.next_index,
        wave=wave.number,
        waves=wave.count,
        failure_budget=inp.strategy.failure_budget(inp.total),
        failures=list(carry.failures),
        started_at=carry.started_at,
        finished_at=now.isoformat() if carry.state.finished else None,
        seconds=elapsed(carry, now),
        region=wave.region,
        soaking_until=carry.soaking_until if carry.state == RolloutState.SOAKING else None,
        halted_region=carry.halted_region,
        halt_reason=carry.halt_reason,
        approvals=list(carry.approvals),
        deleted=counts.deleted,
        kept=counts.kept,
        kept_reasons=list(carry.kept),
        updated=counts.updated,
        in_sync=counts.in_sync,
        drifted=counts.drifted,
        drift=list(carry.drift),
        restored=counts.restored,
        upgraded=counts.upgraded,
        finalized=counts.finalized,
        upgrades=upgrades_of(carry),
    )


def upgrades_of(carry: RolloutCarry) -> list[UpgradedMesh]:
    """Where each upgrade the rollout started stands, by target order (the first
    ``MAX_REPORTED_FAILURES``)."""
    return [carry.upgrades[i] for i in sorted(carry.upgrades)[:MAX_REPORTED_FAILURES]]


def elapsed(carry: RolloutCarry, now: datetime) -> float:
    """Seconds since the rollout's first run started."""
    if carry.started_at is None:
        return 0.0
    started = datetime.fromisoformat(carry.started_at)
    return round((now - started).total_seconds(), 3)


def details(inp: RolloutInput, carry: RolloutCarry, wave: Wave, counts_text: str) -> str:
    """The line the Temporal UI shows above the rollout's history."""
    where = f"region {wave.region} " if wave.region else ""
    notes = ""
    if carry.state == RolloutState.SOAKING:
        notes = f" · soaking until {carry.soaking_until}"
    elif carry.state == RolloutState.AWAITING_APPROVAL:
        notes = f" · awaiting approval after {wave.name}"
    elif carry.state == RolloutState.AWAITING_FINALIZE:
        notes = " · awaiting `meshfleet finalize`"
    if carry.counts.upgraded:
        notes += (
            f" · {carry.counts.upgraded} upgraded, {carry.counts.finalized} finalized"
            f" ({carry.counts.upgraded - carry.counts.finalized} can still be rolled back)"
        )
    if carry.halted_region:
        notes += f" · region {carry.halted_region} over its failure budget"
    if carry.halt_reason:
        notes += f" · {carry.halt_reason}"
    return (
        f"**{carry.state.value}** · {where}wave {wave.number}/{wave.count} · "
        f"{carry.counts.done}/{inp.total} done: {counts_text} · "
        f"{len(carry.in_flight)} in flight · "
        f"{inp.total - carry.next_index} pending{notes}"
    ) + drift_details(carry)


DETAILED_DRIFT = 10
"""Drifted meshes the UI's details list by name; the report and ``--json`` list more."""


def drift_details(carry: RolloutCarry) -> str:
    """The meshes found differing from the manifest, each with its fields, under the details
    line (empty when none did)."""
    if not carry.drift:
        return ""
    lines = [
        f"- {d.mesh_name} ({d.region}, project {d.project_id}) {d.outcome}: " + "; ".join(d.fields)
        for d in carry.drift[:DETAILED_DRIFT]
    ]
    more = max(len(carry.drift), carry.counts.drifted) - DETAILED_DRIFT
    if more > 0:
        lines.append(f"- … and {more} more (the report lists up to 200)")
    return "\n\n**drift** (meshes that differed from the manifest):\n" + "\n".join(lines)


def banner(carry: RolloutCarry, rollout_id: str, flag: str) -> str | None:
    """What a person must do for a halted or paused rollout to go on; ``flag`` is what the CLI
    needs after the rollout id (`` --rollback`` for a rollback)."""
    if carry.state == RolloutState.HALTED:
        if carry.halt_reason:
            why = carry.halt_reason
        elif carry.halted_region:
            why = f"region {carry.halted_region} over its failure budget"
        else:
            why = (
                f"{carry.counts.failed} failed, over the failure budget of {carry.allowed_failures}"
            )
        return (
            f"HALTED: {why} · `meshfleet resume {rollout_id}{flag}` goes on, "
            f"`meshfleet cancel {rollout_id}{flag}` stops"
        )
    if carry.state == RolloutState.PAUSED:
        return f"PAUSED: nothing new starts · `meshfleet resume {rollout_id}{flag}` goes on"
    if carry.state == RolloutState.AWAITING_FINALIZE:
        waiting = len(carry.finalize_order)
        return (
            f"AWAITING FINALIZE: {waiting} upgraded mesh(es) run the new version with the old "
            f"control plane still installed · `meshfleet finalize {rollout_id}` uninstalls it "
            f"(no way back after), `meshfleet cancel {rollout_id}` then `meshfleet rollback "
            f"{rollout_id}` rolls them back"
        )
    return None


def approval_banner(wave: Wave, rollout_id: str) -> str:
    """What the timer of an approval gate says while it stands."""
    return f"AWAITING APPROVAL after {wave.name} · `meshfleet approve {rollout_id}` opens the gate"


def gate_name(number: int | None, region: str | None) -> str:
    """``wave 2``, ``wave 2 of eu-west-101``: the gate an approval names."""
    return f"wave {number}" + (f" of {region}" if region else "")


def refusal(carry: RolloutCarry, refused: tuple[RolloutState, ...]) -> str | None:
    """Why an update is refused in the rollout's state, if it is one of ``refused``."""
    if carry.state in refused:
        return f"rollout is {carry.state.value}"
    return None


def gate_refusal(carry: RolloutCarry, outcome: str) -> str | None:
    """Why pause or resume is refused between waves: nothing starts there anyway, and a pause
    that outlived the gate would hold a rollout nobody meant to hold. ``outcome``: what would
    happen after the gate."""
    if carry.state == RolloutState.SOAKING:
        why = f"nothing starts before {carry.soaking_until}, then {outcome}"
    elif carry.state == RolloutState.VERIFYING:
        why = f"nothing starts until the finished wave is verified, then {outcome}"
    elif carry.state == RolloutState.AWAITING_APPROVAL:
        why = "nothing starts until `approve`"
    elif carry.state == RolloutState.AWAITING_FINALIZE:
        why = "nothing starts until `finalize`"
    else:
        return None
    return f"rollout is {carry.state.value}: {why} (`cancel` stops it)"


def failed_because(what: str, carry: RolloutCarry, total: int, spent: str, counts_text: str) -> str:
    """One line: how many targets failed against which budgets (``spent``)."""
    return (
        f"{what} failed: {carry.counts.failed} of {total} targets failed, over "
        f"{spent}; {counts_text}"
    )
