"""Settings of the worker and the CLI, read from the environment (credentials excepted)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
