"""Pydantic models of every table of the ASM create-mesh page, request and response."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meshfleet.asm.rules import MeshName

# [0-9], not \d: \d also matches non-ASCII digits (Arabic-Indic, fullwidth).
VERSION_RE = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9]+)-r([0-9]+)\Z")
APM_OTEL = "apm-otel"


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as the API writes it (``2025-04-10T07:48:37Z``), or None if unreadable.

    A time without a zone is read as UTC, which is what ASM and IAM mean.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def version_tuple(version: str) -> tuple[int, int] | None:
    """The (major, minor) line of an ASM version string like ``1.18.7-r5``, or None if malformed."""
    match = VERSION_RE.match(version)
    return (int(match.group(1)), int(match.group(2))) if match else None


class _Wire(BaseModel):
    """Request side: camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=False)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body the API expects: aliases, and no field the caller left unset."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class _Echo(BaseModel):
    """Response side: the API grows, so unknown fields are kept rather than refused."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")


# --- Tables 10-11: selectors ---------------------------------------------------------------


class FieldSelector(_Wire):
    """Table 11: which nodes or namespaces a selector picks."""

    key: str = Field(min_length=1, description="Key, e.g. UID for nodes, Name for namespaces.")
    operator: Literal["In"] = Field(default="In", description="Operator; the API accepts only In.")
    values: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1, description="Values.")


class Selector(_Wire):
    """Table 10: a field selector wrapper."""

    field_selector: FieldSelector = Field(alias="fieldSelector")

    @classmethod
    def by(cls, key: str, values: list[str]) -> Selector:
        """A selector ``key In values``."""
        return cls(field_selector=FieldSelector(key=key, operator="In", values=values))


class InjectionConfig(_Wire):
    """Table 8: namespaces whose pods get the sidecar."""

    namespaces: Selector | None = None


class InstallationConfig(_Wire):
    """Table 9: nodes where the mesh components are installed (mandatory)."""

    nodes: Selector


class MeshCluster(_Wire):
    """Table 7: one CCE cluster joining the mesh."""

    cluster_id: str = Field(alias="clusterID", min_length=1, max_length=64)
    installation: InstallationConfig
    injection: InjectionConfig | None = None


class MeshExtendParams(_Wire):
    """Table 6: extension parameters; the Basic edition names its clusters here."""

    clusters: list[MeshCluster] = Field(min_length=1)

    @field_validator("clusters")
    @classmethod
    def _unique_clusters(cls, clusters: list[MeshCluster]) -> list[MeshCluster]:
        seen: set[str] = set()
        for cluster in clusters:
            if cluster.cluster_id in seen:
                raise ValueError(f"cluster {cluster.cluster_id} is named twice")
            seen.add(cluster.cluster_id)
        return clusters


# --- Tables 12-21: configuration -------------------------------------------------------------


class ProxyConfig(_Wire):
    """Table 13: data-plane traffic redirection; each value is a comma-separated string."""

    include_ip_ranges: str | None = Field(default=None, alias="includeIPRanges")
    exclude_ip_ranges: str | None = Field(default=None, alias="excludeIPRanges")
    exclude_outbound_ports: str | None = Field(default=None, alias="excludeOutboundPorts")
    exclude_inbound_ports: str | None = Field(default=None, alias="excludeInboundPorts")
    include_outbound_ports: str | None = Field(default=None, alias="includeOutboundPorts")
    include_inbound_ports: str | None = Field(default=None, alias="includeInboundPorts")


class Aom(_Wire):
    """Table 16: an AOM instance receiving mesh metrics."""

    instance_id: str = Field(alias="instanceID", min_length=1)


class Metric(_Wire):
    """Table 15: application metrics."""

    aom: list[Aom] | None = None


class LtsConfig(_Wire):
    """Table 18: an LTS log group and stream receiving access logs."""

    log_group_id: str | None = Field(default=None, alias="logGroupID")
    log_stream_id: str | None = Field(default=None, alias="logStreamID")


class AccessLogging(_Wire):
    """Table 17: access logging of the Istio proxies."""

    lts: list[LtsConfig] | None = None


class ZipkinTracingProvider(_Wire):
    """Table 21: a self-hosted Zipkin."""

    service: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)


class TracingExtensionProvider(_Wire):
    """Table 20: a user-defined tracing provider (Zipkin only, today)."""

    name: str | None = None
    zipkin: ZipkinTracingProvider | None = None


class Tracing(_Wire):
    """Table 19: tracing; default providers must be declared or be the preset ``apm-otel``."""

    random_sampling_percentage: float | None = Field(
        default=None, alias="randomSamplingPercentage", ge=0, le=100
    )
    default_providers: list[str] | None = Field(default=None, alias="defaultProviders")
    extension_providers: list[TracingExtensionProvider] | None = Field(
        default=None, alias="extensionProviders"
    )

    @model_validator(mode="after")
    def _providers_declared(self) -> Tracing:
        declared = {p.name for p in self.extension_providers or [] if p.name}
        for name in self.default_providers or []:
            if name != APM_OTEL and name not in declared:
                raise ValueError(
                    f"defaultProviders names {name!r}, which is neither an extensionProviders "
                    f"name nor the preset {APM_OTEL!r}"
                )
        return self


class TelemetryConfig(_Wire):
    """Table 14: observability of the mesh."""

    metrics: Metric | None = None
    access_logging: AccessLogging | None = Field(default=None, alias="accessLogging")
    tracing: Tracing | None = None


class MeshConfig(_Wire):
    """Table 12: mesh configuration."""

    proxy_config: ProxyConfig | None = Field(default=None, alias="proxyConfig")
    telemetry_config: TelemetryConfig | None = Field(default=None, alias="telemetryConfig")


# --- Tables 3-5: the create request --------------------------------------------------------


class MeshSpec(_Wire):
    """Table 5: what ASM should create."""

    type: Literal["InCluster"] = Field(default="InCluster", description="Basic edition only.")
    version: str = Field(description="ASM version such as 1.18.7-r5.")
    extend_params: MeshExtendParams = Field(alias="extendParams")
    ipv6_enable: bool | None = Field(default=None, alias="ipv6Enable")
    config: MeshConfig | None = None

    @field_validator("version")
    @classmethod
    def _version_shape(cls, version: str) -> str:
        line = version_tuple(version)
        if line is None:
            raise ValueError(f"{version!r} is not an ASM version like 1.18.7-r5")
        if line <= (1, 3):
            raise ValueError(f"{version!r}: mesh lines 1.3 and older can no longer be created")
        return version

    @model_validator(mode="after")
    def _version_features(self) -> MeshSpec:
        line = version_tuple(self.version) or (0, 0)
        telemetry = self.config.telemetry_config if self.config else None
        tracing = telemetry.tracing if telemetry else None
        if tracing is None:
            return self
        if any(p.zipkin is not None for p in tracing.extension_providers or []) and line < (1, 15):
            raise ValueError(
                f"a Zipkin provider needs mesh version 1.15 or later, not {self.version}"
            )
        if APM_OTEL in (tracing.default_providers or []) and not _after_118(self.version):
            raise ValueError(
                f"{APM_OTEL!r} needs a mesh version later than 1.18, not {self.version}"
            )
        return self


def _after_118(version: str) -> bool:
    """Whether a version is "later than 1.18": the seed's 1.18.7-r5 is, 1.15.7-r3 is not."""
    match = VERSION_RE.match(version)
    return bool(match) and tuple(int(g) for g in match.groups()) > (1, 18, 0, 0)  # type: ignore[union-attr]


class MeshMetadata(_Wire):
    """Table 4: the mesh's name (4-64 chars, lower-case letters, digits and '-')."""

    name: MeshName


class CreateMeshRequest(_Wire):
    """Table 3: body of ``POST /v1/{project_id}/meshes``."""

    api_version: Literal["v1"] = Field(default="v1", alias="apiVersion")
    kind: Literal["Mesh", "mesh"] = "Mesh"
    metadata: MeshMetadata
    spec: MeshSpec


class UpdateMeshRequest(_Wire):
    """Body of ``PUT /v2/projects/{project_id}/meshes/{mesh_id}``: a new configuration only.

    Version, clusters, name and IPv6 cannot change this way, so the model has no field for them.
    """

    action: Literal["update"] = Field(
        default="update", description="Mandatory on the wire; 'update' is its only value."
    )
    mesh_config: MeshConfig = Field(
        alias="meshConfig", description="The whole new configuration, shaped as spec.config."
    )


# --- Tables 22-37: the mesh as the API returns it ------------------------------------------


class MeshPhase(StrEnum):
    """Table 37: the lifecycle phase of a mesh."""

    RUNNING = "Running"
    CREATING = "Creating"
    CREATE_FAILED = "CreateFailed"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"
    UPGRADING = "Upgrading"
    UPGRADE_FAILED = "UpgradeFailed"
    ROLLING_BACK = "RollingBack"
    ROLLBACK_FAILED = "RollbackFailed"

    @property
    def failed(self) -> bool:
        """Every ``*Failed`` phase is terminal and fatal."""
        return self.value.endswith("Failed")

    @property
    def in_progress(self) -> bool:
        """The mesh is still changing; keep polling."""
        return self in {self.CREATING, self.DELETING, self.UPGRADING, self.ROLLING_BACK}


class MeshStatus(_Echo):
    """Table 37: status generated by ASM."""

    phase: MeshPhase | str | None = None
    update_timestamp: str | None = Field(default=None, alias="updateTimestamp")

    @property
    def known_phase(self) -> MeshPhase | None:
        """The phase as the enum, or None for a phase this library does not know yet."""
        try:
            return MeshPhase(self.phase) if self.phase is not None else None
        except ValueError:
            return None


class MeshClusterInfo(_Echo):
    """Table 26: a cluster as echoed (installation and injection are not returned)."""

    cluster_id: str = Field(alias="clusterID")


class MeshExtendParamsInfo(_Echo):
    """Table 25: clusters of the mesh."""

    clusters: list[MeshClusterInfo] = Field(default_factory=list)


class MeshConfigInfo(_Echo):
    """Table 27: the configuration as echoed; kept as plain data to tolerate growth."""

    proxy_config: dict[str, Any] | None = Field(default=None, alias="proxyConfig")
    telemetry_config: dict[str, Any] | None = Field(default=None, alias="telemetryConfig")


class MeshSpecInfo(_Echo):
    """Table 24: the spec as echoed."""

    type: str | None = None
    version: str | None = None
    extend_params: MeshExtendParamsInfo | None = Field(default=None, alias="extendParams")
    ipv6_enable: bool | None = Field(default=None, alias="ipv6Enable")
    config: MeshConfigInfo | None = None


class MeshMetadataInfo(_Echo):
    """Table 23: name, uid and creation time."""

    name: str
    uid: str | None = None
    creation_timestamp: str | None = Field(default=None, alias="creationTimestamp")


class Mesh(_Echo):
    """Table 22: a service mesh as create, show and list return it."""

    api_version: str | None = Field(default=None, alias="apiVersion")
    kind: str | None = None
    metadata: MeshMetadataInfo
    spec: MeshSpecInfo | None = None
    status: MeshStatus = Field(default_factory=MeshStatus)

    @property
    def uid(self) -> str | None:
        """The mesh id used in show and delete paths."""
        return self.metadata.uid

    @property
    def phase(self) -> str | None:
        """The phase as a string, known or not."""
        return None if self.status.phase is None else str(self.status.phase)

    @property
    def cluster_ids(self) -> list[str]:
        """The ids of the clusters the mesh spans."""
        if self.spec is None or self.spec.extend_params is None:
            return []
        return [c.cluster_id for c in self.spec.extend_params.clusters]


class MeshList(_Echo):
    """``GET /v1/{project_id}/meshes``: every mesh of the project, no paging."""

    api_version: str | None = Field(default=None, alias="apiVersion")
    kind: str | None = None
    items: list[Mesh] = Field(default_factory=list)


class ErrorBody(_Echo):
    """Tables 38-40: the error body of every non-2xx answer."""

    error_code: str = Field(alias="errorCode")
    error_msg: str = Field(alias="errorMsg")
