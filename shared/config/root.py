"""The root of the configuration: a section per service, then s3, s3_api, models, log and auth.

The eleven service sections are spelled here so that the type checker knows them (`config.storaged.bind` is a str);
what depends on the registry (the gateway's upstream URL keys and `[gateway.timeouts]`, a section for a service added
by a registry row) is added to a subclass of this one by `shared.config.loader.config_model`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from shared.config.auth import AuthConfig
from shared.config.base import ServiceSection
from shared.config.catalogd import CatalogConfig
from shared.config.chatd import ChatdConfig
from shared.config.embedd import EmbeddConfig
from shared.config.gateway import GatewayConfig
from shared.config.ingestd import IngestConfig
from shared.config.log import LogConfig
from shared.config.matrixd import MatrixdConfig
from shared.config.models import ModelsConfig
from shared.config.observerd import ObserverdConfig
from shared.config.pathwayd import PathwaydConfig
from shared.config.queryd import QuerydConfig
from shared.config.s3 import S3Config
from shared.config.s3_api import S3ApiConfig
from shared.config.storaged import StoragedConfig
from shared.config.vectord import VectordConfig

ENV_PREFIX = "LH_"
ENV_DELIMITER = "__"


class LakehouseConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    # The TOML file's data, set per load on a throwaway subclass by the loader.
    file_data: ClassVar[dict[str, Any]] = {}

    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    storaged: StoragedConfig = Field(default_factory=StoragedConfig)
    catalogd: CatalogConfig = Field(default_factory=CatalogConfig)
    ingestd: IngestConfig = Field(default_factory=IngestConfig)
    queryd: QuerydConfig = Field(default_factory=QuerydConfig)
    vectord: VectordConfig = Field(default_factory=VectordConfig)
    embedd: EmbeddConfig = Field(default_factory=EmbeddConfig)
    pathwayd: PathwaydConfig = Field(default_factory=PathwaydConfig)
    matrixd: MatrixdConfig = Field(default_factory=MatrixdConfig)
    observerd: ObserverdConfig = Field(default_factory=ObserverdConfig)
    chatd: ChatdConfig = Field(default_factory=ChatdConfig)
    s3: S3Config = Field(default_factory=S3Config)
    s3_api: S3ApiConfig = Field(default_factory=S3ApiConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No dotenv or secrets dir. The TOML file's data, read per load by `load_config`, ranks below the environment.
        return init_settings, env_settings, InitSettingsSource(settings_cls, cls.file_data)

    def section(self, name: str) -> ServiceSection:
        """The section of the service `name` (also one a registry row added)."""
        section = getattr(self, name)
        assert isinstance(section, ServiceSection), name
        return section

    def section_bind(self, name: str) -> str:
        return self.section(name).bind

    @property
    def s3_api_on(self) -> bool:
        """Whether any S3 client can sign: with `[s3_api]`'s key pair, or with a client key (which needs the master
        key that seals its S3 secret)."""
        return self.s3_api.enabled or bool(self.auth.master_key.get_secret_value())


# The sections every stack has besides the services', in the order the file shows them.
COMMON_SECTIONS = ("s3", "s3_api", "models", "log", "auth")
