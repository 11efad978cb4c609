"""The log filter that keeps a credential passed as a keyword out of every log line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import structlog

from meshfleet.logs import drop_secrets

SECRET = "MIIsim-very-secret-value-4f1c"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "secret",
        "token",
        "sk",
        "SK",
        "authorization",
        "api_key",
        "iam_password",
        "client_secret",
        "auth_token",
        "AUTH_TOKEN",
    ],
)
def test_a_key_that_names_a_credential_is_redacted(key: str) -> None:
    event = drop_secrets(None, "info", {"event": "calling", key: SECRET})
    assert event == {"event": "calling", key: "[redacted]"}


@pytest.mark.parametrize("key", ["mesh_name", "token_count", "skip", "project_id", "tokens_ok"])
def test_other_keys_are_left_alone(key: str) -> None:
    event = drop_secrets(None, "info", {"event": "calling", key: "visible"})
    assert event[key] == "visible"


def test_a_rendered_line_holds_no_credential() -> None:
    # The filter in a chain as configure() builds it: filter, then the JSON renderer.
    logger = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[drop_secrets, structlog.processors.JSONRenderer()],
    )
    line = logger.info("token fetched", user="release-bot", token=SECRET, sk=SECRET)

    assert isinstance(line, str)
    assert SECRET not in line
    assert json.loads(line) == {
        "event": "token fetched",
        "user": "release-bot",
        "token": "[redacted]",
        "sk": "[redacted]",
    }


def test_a_credential_one_level_down_is_redacted_too() -> None:
    # Request headers logged as a dict carry the token under a header name.
    event = drop_secrets(
        None,
        "info",
        {
            "event": "request",
            "headers": {"X-Auth-Token": SECRET, "Accept": "application/json"},
            "attempts": [{"x-security-token": SECRET, "status": 401}],
        },
    )
    assert SECRET not in json.dumps(event)
    assert event["headers"] == {"X-Auth-Token": "[redacted]", "Accept": "application/json"}
    assert event["attempts"] == [{"x-security-token": "[redacted]", "status": 401}]


# A worker logs from several threads at once: its own events through structlog and the SDK's
# through the standard library's handler, both on standard error. Run in a process of its own,
# as a worker writes to a pipe its supervisor reads.
_INTERLEAVED = """
import logging, sys, threading
import structlog
from meshfleet.logs import configure

configure(fmt="json")
ours, sdk = structlog.get_logger(), logging.getLogger("temporalio.activity")

def speak(log, kind):
    for i in range(2000):
        log.warning("line", writer=kind, i=i) if kind == "ours" else log.warning("sdk line %d", i)

pairs = ((ours, "ours"), (ours, "ours"), (sdk, "sdk"))
threads = [threading.Thread(target=speak, args=pair) for pair in pairs]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_lines_from_structlog_and_the_sdk_never_share_a_line() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _INTERLEAVED], capture_output=True, text=True, check=True
    )
    lines = done.stderr.splitlines()

    assert len(lines) == 6000
    broken = [line for line in lines if not _one_json_object(line)]
    assert not broken, f"{len(broken)} lines are not one JSON object each: {broken[:2]}"


def _one_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False
