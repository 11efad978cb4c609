"""Connecting to Temporal: environment configuration, the pydantic converter, one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

DEFAULT_ADDRESS = "localhost:7233"


def connect_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``Client.connect`` arguments from TEMPORAL_* variables and temporal.toml profiles.

    Args:
        environ: Overrides the process environment (tests).
    """
    env = os.environ if environ is None else environ
    named = env.get("TEMPORAL_CONFIG_FILE")
    if named and not Path(named).is_file():
        # Silently falling back to localhost would point a production worker at nothing.
        raise FileNotFoundError(f"TEMPORAL_CONFIG_FILE names {named}, which is not a file")
    # A variable set but empty (`TEMPORAL_API_KEY=` in a compose file or CI template) means
    # unset: read as given it would turn TLS on for an empty key, or name the namespace "".
    given = {k: v for k, v in env.items() if not (k.startswith("TEMPORAL_") and not v.strip())}
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config(override_env_vars=given))
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config.setdefault("namespace", "default")
    return config


async def connect(
    environ: Mapping[str, str] | None = None, runtime: Runtime | None = None
) -> Client:
    """A client with the pydantic data converter, configured from the environment."""
    config = connect_config(environ)
    return await Client.connect(**config, data_converter=pydantic_data_converter, runtime=runtime)
