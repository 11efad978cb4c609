"""What each key of the manifest means, in the words an editor shows beside the YAML.

The JSON Schema (``document.manifest_schema``) carries these; docs/manifest.md says the same at
length.
"""

from __future__ import annotations

DURATION_WORDS = (
    "A duration: seconds (20, 0.5), or units from largest to smallest, each at most once: "
    "d, h, m, s, ms (20s, 10m, 1h30m, 500ms); at most 30 days."
)

MANIFEST = {
    "strategy": "How fast: window, waves, failure budget and timings, and the progressive "
    "steps (soak, verify, approval gates, regions). Every key is optional.",
    "defaults": "Values every target takes unless it sets its own: any target key but "
    "cluster_id and mesh_name. A target's value replaces the default as a whole.",
    "targets": "The meshes to create, one per CCE cluster (at most 20,000 per manifest).",
}

STRATEGY = {
    "window": "At most this many targets in flight (1-1000).",
    "waves": "Cumulative wave ends, each a count (at least 1) or a percentage of all targets, "
    "like [1, '10%', '100%']. A wave starts only when the previous one finished within the "
    "failure budget; a last wave up to 100% is implied.",
    "max_failures": "Failures tolerated: a count, or a percentage of all targets rounded down "
    "('5%'). One more halts the rollout until `meshfleet resume` or `cancel`.",
    "first_poll": "Wait after the create POST before the first status poll.",
    "poll_interval": "Wait between status polls.",
    "timeout": "Per mesh, from the POST to Running.",
    "heartbeat_timeout": "How soon a status poll on a dead worker moves to another worker "
    "(at least 1s).",
    "create_retry": "Backoff of the create POST on 429, 5xx and connection errors.",
    "soak": "After each wave but the last (the last too when it upgraded meshes, before they are "
    "finalized), wait this long before the next starts.",
    "verify": "After each wave but the last (the last too before upgraded meshes are finalized), "
    "and its soak, read the wave's meshes again: "
    "true, or {webhook: URL} to also ask a service; false for none.",
    "approve_after": "Wave numbers (1-based; within each region with sequential regions) after "
    "which the rollout waits for `meshfleet approve`.",
    "regions": "Regions in order, each with a failure budget of its own: {order: [...], mode: "
    "sequential|parallel, max_failures: N or 'P%'}.",
    "existing": "What the rollout does with a target's mesh that exists already and differs "
    "from the manifest (another configuration or version): adopt takes it as it stands and "
    "reports it drifted; converge updates its configuration in place, and upgrades a mesh one "
    "line behind through ASM's canary upgrade (1.8 or 1.13 to 1.15, 1.15 to 1.18; further "
    "behind is refused, UpgradePathTooLong); require_match fails the target (MeshDrifted). A "
    "mesh that matches is left alone, a missing one created, a newer version refused "
    "(DowngradeRefused), whatever the mode.",
    "notify": "Where a drift check reports the targets that differ from the manifest: "
    "{webhook: URL}.",
    "upgrade": "How the meshes a rollout upgrades (existing: converge) are finished: "
    "{finalize: after_rollout|manual}.",
}

UPGRADE = {
    "finalize": "When an upgraded mesh's old control plane is uninstalled (ASM's finish step), "
    "after which it cannot be rolled back: after_rollout, once the last wave has passed its "
    "checks, in the same waves; manual, when `meshfleet finalize ROLLOUT_ID` is run (the "
    "rollout waits in awaiting_finalize).",
}

CREATE_RETRY = {
    "initial": "Wait before the first retry.",
    "maximum": "Longest wait between two attempts.",
    "backoff": "Multiplier of the wait after each retry (at least 1).",
    "max_attempts": "Attempts at most, the first one included (1-1000).",
}

VERIFY = {
    "webhook": "POSTed {rollout_id, wave, meshes[]} after the re-read; a 2xx answer passes. "
    "https://, or plain http to loopback only; no user or password: the worker sends its "
    "MESHFLEET_VERIFY_TOKEN as a bearer token, and only to URLs its "
    "MESHFLEET_VERIFY_ALLOWED_URLS allows.",
}

NOTIFY = {
    "webhook": "POSTed a summary of the drifted targets when a drift check finds any. https://, "
    "or plain http to loopback only; no user or password: the worker sends its "
    "MESHFLEET_NOTIFY_TOKEN as a bearer token.",
}

REGIONS = {
    "order": "Every region the targets use, each once, in the order the rollout walks them.",
    "mode": "sequential: a region starts when the one before it has finished, and the waves "
    "(with soak, verify and gates) repeat within each region. parallel: the waves run over the "
    "whole fleet; targets are still grouped by region.",
    "max_failures": "Failures one region tolerates: a count, or a percentage of the region's "
    "targets rounded down. Default: the strategy's max_failures, applied to each region.",
}

TARGET = {
    "project_id": "The Huawei Cloud project: 32 lower-case hexadecimal characters (quote an "
    "all-digit id). Required, in the target or in defaults.",
    "region": "A region Huawei Cloud serves ASM in, like ap-southeast-3 (the list is in "
    "meshfleet/asm/regions.py; MESHFLEET_EXTRA_REGIONS allows others). Required, in the target or "
    "in defaults.",
    "cluster_id": "The CCE cluster joining the mesh (1-64 characters); a cluster joins one mesh.",
    "mesh_name": "4-64 lower-case letters, digits and '-', starting with a letter and not "
    "ending with '-'; once per project and region.",
    "version": "ASM version, like 1.18.7-r5 (lines 1.13, 1.15 and 1.18).",
    "node_ids": "UIDs of the nodes that host the mesh components (at least one). Required, in "
    "the target or in defaults.",
    "namespaces": "Namespaces whose pods get the sidecar; [] for none.",
    "ipv6": "spec.ipv6Enable: a dual-stack mesh.",
    "config": "spec.config exactly as the ASM API spells it (proxyConfig, telemetryConfig); "
    "null for none. Zipkin needs version 1.15 or later; the preset apm-otel later than 1.18.",
}
