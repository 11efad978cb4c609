"""The log filter that keeps a credential passed as a keyword out of every log line."""

from __future__ import annotations

import json

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
