#!/bin/sh
# Create the namespace and meshfleet's search attributes on a running Temporal; safe to rerun.
# Runs in temporalio/admin-tools; the temporal CLI reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_RETENTION:=30d}"
: "${SETUP_TRIES:=60}"
export TEMPORAL_ADDRESS TEMPORAL_NAMESPACE
# The names and types of meshfleet/search_attributes.py (tests/test_compose.py keeps them equal).
SEARCH_ATTRIBUTES="MeshRolloutId MeshRolloutState MeshProjectId MeshRegion MeshOutcome"

# A new namespace takes a few seconds to reach every frontend cache: retry, within bounds.
retry() {
    n=0
    until "$@"; do
        n=$((n + 1))
        if [ "$n" -ge "$SETUP_TRIES" ]; then
            echo "gave up after $n tries: $*" >&2
            return 1
        fi
        sleep 2
    done
}

retry temporal operator cluster health
if temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    echo "namespace $TEMPORAL_NAMESPACE exists"
else
    temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" \
        --retention "$TEMPORAL_RETENTION"
fi
# Listed once into a variable: retrying a `list | grep -q` pipeline would retry whenever grep
# stopped reading early and the list command died of SIGPIPE.
existing=$(retry temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE")
for name in $SEARCH_ATTRIBUTES; do
    if printf '%s\n' "$existing" | grep -qw "$name"; then
        echo "search attribute $name exists"
    else
        retry temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" \
            --name "$name" --type Keyword
    fi
done
