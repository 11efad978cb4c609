"""Settings and Temporal connection config from the environment and from temporal.toml profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from meshfleet import __version__
from meshfleet.settings import Settings
from meshfleet.temporal import connect_config

CLOUD_ADDRESS = "meshfleet-prod.a1b2c.tmprl.cloud:7233"


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    """Stand-in PEM files: the loader reads the bytes, it does not parse them."""
    files = {"ca": b"CA PEM", "cert": b"CLIENT CERT PEM", "key": b"CLIENT KEY PEM"}
    paths = {}
    for name, data in files.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(data)
        paths[name] = path
    return paths


@pytest.fixture
def toml_file(tmp_path: Path, certs: dict[str, Path]) -> Path:
    """A temporal.toml with a local default profile, a Cloud API-key profile and an mTLS one."""
    path = tmp_path / "temporal.toml"
    path.write_text(
        f"""
[profile.default]
address = "127.0.0.1:7233"
namespace = "default"

[profile.cloud]
address = "{CLOUD_ADDRESS}"
namespace = "meshfleet-prod.a1b2c"
api_key = "cloud-api-key"

[profile.selfhosted]
address = "temporal.internal.example:7233"
namespace = "meshfleet"

[profile.selfhosted.tls]
server_name = "temporal.internal.example"
server_ca_cert_path = "{certs["ca"]}"
client_cert_path = "{certs["cert"]}"
client_key_path = "{certs["key"]}"
"""
    )
    return path


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    config = connect_config({"TEMPORAL_CONFIG_FILE": str(empty)})

    assert config["target_host"] == "localhost:7233"
    assert config["namespace"] == "default"
    assert "api_key" not in config
    assert "tls" not in config


def test_empty_temporal_variables_count_as_unset(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    config = connect_config(
        {
            "TEMPORAL_CONFIG_FILE": str(empty),
            "TEMPORAL_API_KEY": "",
            "TEMPORAL_NAMESPACE": " ",
            "TEMPORAL_ADDRESS": "",
        }
    )
    assert (config["target_host"], config["namespace"]) == ("localhost:7233", "default")
    assert "api_key" not in config
    assert "tls" not in config


def test_a_named_config_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "typo.toml"
    with pytest.raises(FileNotFoundError, match=r"typo\.toml"):
        connect_config({"TEMPORAL_CONFIG_FILE": str(missing)})


def test_temporal_cloud_api_key_from_the_environment() -> None:
    config = connect_config(
        {
            "TEMPORAL_ADDRESS": CLOUD_ADDRESS,
            "TEMPORAL_NAMESPACE": "meshfleet-prod.a1b2c",
            "TEMPORAL_API_KEY": "cloud-api-key",
        }
    )

    assert config["target_host"] == CLOUD_ADDRESS
    assert config["namespace"] == "meshfleet-prod.a1b2c"
    assert config["api_key"] == "cloud-api-key"
    # An API key without TLS would send the key in clear text: TLS is switched on with it.
    assert config["tls"] is True


def test_mtls_files_from_the_environment(certs: dict[str, Path]) -> None:
    config = connect_config(
        {
            "TEMPORAL_ADDRESS": "temporal.internal.example:7233",
            "TEMPORAL_NAMESPACE": "meshfleet",
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(certs["cert"]),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certs["key"]),
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certs["ca"]),
            "TEMPORAL_TLS_SERVER_NAME": "temporal.internal.example",
        }
    )

    tls = config["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"CLIENT CERT PEM"
    assert tls.client_private_key == b"CLIENT KEY PEM"
    assert tls.server_root_ca_cert == b"CA PEM"
    assert tls.domain == "temporal.internal.example"
    assert "api_key" not in config


def test_default_profile_of_a_toml_file(toml_file: Path) -> None:
    config = connect_config({"TEMPORAL_CONFIG_FILE": str(toml_file)})

    assert config["target_host"] == "127.0.0.1:7233"
    assert config["namespace"] == "default"
    assert "tls" not in config


def test_cloud_profile_selected_by_temporal_profile(toml_file: Path) -> None:
    config = connect_config({"TEMPORAL_CONFIG_FILE": str(toml_file), "TEMPORAL_PROFILE": "cloud"})

    assert config["target_host"] == CLOUD_ADDRESS
    assert config["namespace"] == "meshfleet-prod.a1b2c"
    assert config["api_key"] == "cloud-api-key"
    assert config["tls"] is True


def test_mtls_profile_reads_the_certificate_files(toml_file: Path) -> None:
    config = connect_config(
        {"TEMPORAL_CONFIG_FILE": str(toml_file), "TEMPORAL_PROFILE": "selfhosted"}
    )

    assert config["target_host"] == "temporal.internal.example:7233"
    assert config["namespace"] == "meshfleet"
    tls = config["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"CLIENT CERT PEM"
    assert tls.client_private_key == b"CLIENT KEY PEM"
    assert tls.server_root_ca_cert == b"CA PEM"
    assert tls.domain == "temporal.internal.example"


def test_environment_overrides_the_profile(toml_file: Path) -> None:
    config = connect_config(
        {
            "TEMPORAL_CONFIG_FILE": str(toml_file),
            "TEMPORAL_PROFILE": "cloud",
            "TEMPORAL_NAMESPACE": "meshfleet-staging.a1b2c",
        }
    )

    assert config["namespace"] == "meshfleet-staging.a1b2c"
    assert config["target_host"] == CLOUD_ADDRESS
    assert config["api_key"] == "cloud-api-key"


def test_an_unknown_profile_is_an_error_not_a_silent_localhost(toml_file: Path) -> None:
    with pytest.raises(Exception, match="Profile 'nope' not found"):
        connect_config({"TEMPORAL_CONFIG_FILE": str(toml_file), "TEMPORAL_PROFILE": "nope"})


def test_tls_can_be_switched_off_explicitly() -> None:
    config = connect_config(
        {"TEMPORAL_ADDRESS": "127.0.0.1:7233", "TEMPORAL_API_KEY": "k", "TEMPORAL_TLS": "false"}
    )

    assert config["tls"] is False


def test_worker_settings_from_the_environment() -> None:
    settings = Settings.model_validate(
        {
            "MESHFLEET_TASK_QUEUE": "meshfleet-prod",
            "ASM_ENDPOINT": "http://127.0.0.1:18080",
            "MESHFLEET_METRICS_PORT": "9464",
            "MESHFLEET_LOG_FORMAT": "json",
            "MESHFLEET_GRACEFUL_SHUTDOWN": "5",
        }
    )

    assert settings.task_queue == "meshfleet-prod"
    assert settings.asm_endpoint == "http://127.0.0.1:18080"
    assert settings.metrics_port == 9464
    assert settings.log_format == "json"
    assert settings.graceful_shutdown_s == 5.0


def test_worker_settings_defaults() -> None:
    settings = Settings.model_validate({})

    assert settings.task_queue == "meshfleet"
    assert settings.asm_endpoint is None
    assert settings.metrics_port is None


def test_an_impossible_metrics_port_is_refused() -> None:
    with pytest.raises(ValidationError, match="MESHFLEET_METRICS_PORT"):
        Settings.model_validate({"MESHFLEET_METRICS_PORT": "70000"})


def test_settings_never_hold_credentials() -> None:
    secrets = {
        "ASM_AUTH_TOKEN": "tok-7f3a",
        "HUAWEICLOUD_SDK_SK": "sk-91ce",
        "TEMPORAL_API_KEY": "key-02bd",
    }
    settings = Settings.model_validate(secrets)

    dumped = settings.model_dump_json()
    assert not [value for value in secrets.values() if value in dumped]


def test_worker_versioning_is_off_by_default_and_the_build_is_meshfleets_version() -> None:
    settings = Settings.model_validate({})

    assert settings.deployment_name is None
    assert not settings.versioned
    assert settings.build_id == __version__


def test_a_deployment_name_switches_worker_versioning_on() -> None:
    settings = Settings.model_validate({"MESHFLEET_DEPLOYMENT_NAME": "meshfleet-prod"})

    assert settings.versioned
    assert (settings.deployment_name, settings.build_id) == ("meshfleet-prod", __version__)


def test_a_deployment_with_a_build_id_of_its_own() -> None:
    settings = Settings.model_validate(
        {"MESHFLEET_DEPLOYMENT_NAME": "meshfleet-prod", "MESHFLEET_BUILD_ID": "0.3.0+g1a2b3c4"}
    )

    assert (settings.deployment_name, settings.build_id) == ("meshfleet-prod", "0.3.0+g1a2b3c4")


def test_a_build_id_without_a_deployment_name_is_refused_naming_both() -> None:
    # The worker prints this error: it must not echo the rest of its environment.
    env = {
        "ASM_AUTH_TOKEN": "tok-7f3a",
        "MESHFLEET_BUILD_ID": "0.3.0",
        "HUAWEICLOUD_SDK_SK": "sk-91",
    }

    with pytest.raises(ValidationError) as err:
        Settings.model_validate(env)

    assert "MESHFLEET_BUILD_ID" in str(err.value)
    assert "MESHFLEET_DEPLOYMENT_NAME" in str(err.value)
    assert "tok-7f3a" not in str(err.value)
    assert "sk-91" not in str(err.value)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("MESHFLEET_DEPLOYMENT_NAME", "", "must not be empty"),
        ("MESHFLEET_DEPLOYMENT_NAME", "  ", "must not be empty"),
        ("MESHFLEET_DEPLOYMENT_NAME", "mesh fleet", "is not allowed"),
        # Temporal separates deployment and build with these in its version strings.
        ("MESHFLEET_DEPLOYMENT_NAME", "meshfleet.prod", "is not allowed"),
        ("MESHFLEET_DEPLOYMENT_NAME", "meshfleet:prod", "is not allowed"),
        ("MESHFLEET_DEPLOYMENT_NAME", "__meshfleet", "is not allowed"),
        ("MESHFLEET_DEPLOYMENT_NAME", "m" * 101, "at most 100"),
        ("MESHFLEET_BUILD_ID", "", "must not be empty"),
        ("MESHFLEET_BUILD_ID", "0.3.0 rc1", "is not allowed"),
        ("MESHFLEET_BUILD_ID", "0.3.0/rc1", "is not allowed"),
        ("MESHFLEET_BUILD_ID", "-0.3.0", "is not allowed"),
        ("MESHFLEET_BUILD_ID", "b" * 101, "at most 100"),
    ],
)
def test_an_unusable_versioning_setting_is_refused_naming_its_variable(
    variable: str, value: str, problem: str
) -> None:
    env = {"MESHFLEET_DEPLOYMENT_NAME": "meshfleet-prod", variable: value}

    with pytest.raises(ValidationError, match=problem) as err:
        Settings.model_validate(env)

    assert variable in str(err.value)


def test_the_verify_webhook_allowlist_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Comma-separated text, not JSON: the environment's own form.
    monkeypatch.setenv(
        "MESHFLEET_VERIFY_ALLOWED_URLS", "https://checks.example.com/verify, http://127.0.0.1:9000"
    )
    allowed = Settings().verify_allowed_urls

    assert [p.text for p in allowed] == [
        "https://checks.example.com/verify",
        "http://127.0.0.1:9000",
    ]
    assert Settings.model_validate({"MESHFLEET_VERIFY_ALLOWED_URLS": ""}).verify_allowed_urls == ()


def test_without_the_allowlist_no_webhook_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHFLEET_VERIFY_ALLOWED_URLS", raising=False)
    assert Settings.model_validate({}).verify_allowed_urls == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("checks.example.com/verify", "entry 'checks.example.com/verify' is refused"),
        ("https://checks.example.com/verify?sig=1", "a prefix has no query or fragment"),
        ("http://checks.example.com/verify", "plain http is allowed only to loopback"),
        ("https://a.example.com,,https://b.example.com", "entry 2 of 3 is empty"),
    ],
)
def test_a_malformed_allowed_url_is_a_settings_error_naming_it(value: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as err:
        Settings.model_validate({"MESHFLEET_VERIFY_ALLOWED_URLS": value})

    assert "MESHFLEET_VERIFY_ALLOWED_URLS" in str(err.value)


def test_an_allowed_url_with_a_password_is_refused_without_printing_it() -> None:
    # The worker prints its settings error on standard error.
    with pytest.raises(ValidationError) as err:
        Settings.model_validate(
            {"MESHFLEET_VERIFY_ALLOWED_URLS": "https://bot:hunter2@checks.example.com/verify"}
        )

    assert "carries a user or password" in str(err.value)
    assert "hunter2" not in str(err.value)
