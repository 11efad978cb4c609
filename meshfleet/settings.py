"""Settings of the worker and the CLI, read from the environment (credentials excepted)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from meshfleet import __version__
from meshfleet.webhook_allowlist import (
    ALLOWED_URLS_ENV,
    UrlPrefix,
    parse_allowed_urls,
    without_userinfo,
)

DEPLOYMENT_NAME_ENV = "MESHFLEET_DEPLOYMENT_NAME"
BUILD_ID_ENV = "MESHFLEET_BUILD_ID"

# Temporal refuses '.' and ':' in a deployment name (they separate name and build id in its
# version strings) and a leading '__' in either; we also keep out spaces, slashes and anything
# an operator would have to quote in the CLI or a visibility query.
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# A build id is usually a release ("0.2.0", "0.2.0.dev0", "0.2.0+g1a2b3c4") or a commit.
_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_MAX_VERSIONING_ID = 100


def _check_versioning_id(value: str, env: str, pattern: re.Pattern[str], allowed: str) -> str:
    if not value.strip():
        raise ValueError(f"{env} must not be empty: set it or leave it unset")
    if len(value) > _MAX_VERSIONING_ID:
        raise ValueError(f"{env} is {len(value)} characters long; at most {_MAX_VERSIONING_ID}")
    if not pattern.fullmatch(value):
        raise ValueError(
            f"{env}={value!r} is not allowed: {allowed}, starting with a letter or digit"
        )
    return value


def _allowed_urls(value: Any) -> Any:
    return parse_allowed_urls(value) if isinstance(value, str) else value


# Comma-separated text in the environment, never JSON (NoDecode): parsed into prefixes here.
_AllowedUrls = Annotated[tuple[UrlPrefix, ...], NoDecode, BeforeValidator(_allowed_urls)]


class Settings(BaseSettings):
    """Everything a meshfleet process needs to know, except secrets.

    Credentials (ASM_AUTH_TOKEN, HUAWEICLOUD_SDK_AK/SK, HUAWEICLOUD_IAM_*) are read by
    ``asm.auth.auth_from_env`` inside the worker only, so they never reach workflow payloads.
    Temporal's own connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
    TEMPORAL_TLS_*, TEMPORAL_PROFILE, temporal.toml) are read by ``temporalio.envconfig``.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    task_queue: str = Field(default="meshfleet", alias="MESHFLEET_TASK_QUEUE")
    asm_endpoint: str | None = Field(default=None, alias="ASM_ENDPOINT")
    asm_request_timeout_s: float = Field(default=30.0, gt=0, alias="ASM_REQUEST_TIMEOUT")
    ui_url: str = Field(default="http://localhost:8233", alias="MESHFLEET_UI_URL")
    max_concurrent_activities: int = Field(
        default=1000, ge=1, alias="MESHFLEET_MAX_CONCURRENT_ACTIVITIES"
    )
    max_concurrent_workflow_tasks: int = Field(
        default=100, ge=2, alias="MESHFLEET_MAX_CONCURRENT_WORKFLOW_TASKS"
    )
    max_activities_per_second: float | None = Field(
        default=None, gt=0, alias="MESHFLEET_MAX_ACTIVITIES_PER_SECOND"
    )
    max_task_queue_activities_per_second: float | None = Field(
        default=None, gt=0, alias="MESHFLEET_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND"
    )
    # create_mesh is a local activity, which the two limits above do not cover.
    max_creates_per_second: float | None = Field(
        default=None, gt=0, alias="MESHFLEET_MAX_CREATES_PER_SECOND"
    )
    max_concurrent_local_activities: int = Field(
        default=1000, ge=1, alias="MESHFLEET_MAX_CONCURRENT_LOCAL_ACTIVITIES"
    )
    graceful_shutdown_s: float = Field(default=30.0, ge=0, alias="MESHFLEET_GRACEFUL_SHUTDOWN")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, alias="MESHFLEET_METRICS_PORT")
    sdk_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, alias="MESHFLEET_SDK_METRICS_PORT"
    )
    log_format: str = Field(default="auto", alias="MESHFLEET_LOG_FORMAT")
    log_level: str = Field(default="INFO", alias="MESHFLEET_LOG_LEVEL")
    # Worker Versioning (docs/worker-versioning.md): off unless a deployment name is set.
    deployment_name: str | None = Field(default=None, alias=DEPLOYMENT_NAME_ENV)
    # Not validated when defaulted (settings validate defaults otherwise): the validator below
    # sees only a build id that was given.
    build_id: str = Field(default=__version__, alias=BUILD_ID_ENV, validate_default=False)
    # Where the verify webhook's bearer token may go (meshfleet/webhook_allowlist.py); unset:
    # nowhere.
    verify_allowed_urls: _AllowedUrls = Field(default=(), alias=ALLOWED_URLS_ENV)

    @field_validator("deployment_name")
    @classmethod
    def _valid_deployment_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_versioning_id(
            value, DEPLOYMENT_NAME_ENV, _DEPLOYMENT_NAME, "letters, digits, '-' and '_'"
        )

    # A field's error shows only its own value, where a model validator's would print the whole
    # environment, credentials included. Fields validate in order: the deployment name is known.
    @field_validator("build_id")
    @classmethod
    def _valid_build_id(cls, value: str, info: ValidationInfo) -> str:
        # Unversioned workers always report meshfleet's own version: a build id of one's own
        # without a deployment would suggest versioning is on when it is not. (A deployment
        # name that is itself invalid is missing from info.data and reported on its own.)
        if "deployment_name" in info.data and info.data["deployment_name"] is None:
            raise ValueError(
                f"{BUILD_ID_ENV} is set but {DEPLOYMENT_NAME_ENV} is not: Worker Versioning "
                f"needs both (set {DEPLOYMENT_NAME_ENV} too, or unset {BUILD_ID_ENV})"
            )
        return _check_versioning_id(
            value, BUILD_ID_ENV, _BUILD_ID, "letters, digits, '.', '+', '-' and '_'"
        )

    @field_validator("verify_allowed_urls", mode="wrap")
    @classmethod
    def _allowed_urls_without_passwords(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> Any:
        # A prefix with a user or password is refused, and the refusal prints the value it was
        # given: it is given the value with those taken out (refused all the same).
        return handler(without_userinfo(value) if isinstance(value, str) else value)

    @property
    def versioned(self) -> bool:
        """Whether this worker uses Temporal Worker Versioning (a deployment name is set)."""
        return self.deployment_name is not None
