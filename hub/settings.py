"""One typed settings object for the whole hub.

Read from ``config/hub.toml`` (or the file named by ``CAREHUB_CONFIG``), then
overridden by ``CAREHUB_*`` environment variables, ``__`` separating nested
keys (``CAREHUB_DATABASE_URL``, ``CAREHUB_SOURCES__LEGACY_ESCR__ENABLED``).
Every problem is reported at start-up, all at once; an unknown key at any level
is a problem (``extra="forbid"``), so a key in the wrong table is never silently
ignored. Every other configuration file is named here (``*_file`` keys, resolved
by :meth:`Settings.config_path`) and checked with this file by
:func:`hub.config_check.check_config` (``carehub config check``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hub.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def config_file() -> Path:
    """The hub's settings file: ``CAREHUB_CONFIG``, else ``config/hub.toml`` here or in the project."""
    explicit = os.environ.get("CAREHUB_CONFIG")
    if explicit:
        return Path(explicit).resolve()
    local = Path.cwd() / "config"
    return (local if (local / "hub.toml").exists() else PROJECT_ROOT / "config") / "hub.toml"


def config_dir() -> Path:
    """The folder holding hub.toml; every other file the settings name is found relative to it."""
    return config_file().parent


class Strict(BaseModel):
    """A settings table that refuses keys it does not know (a misplaced key is an error, never ignored)."""

    model_config = ConfigDict(extra="forbid")


class SourceSettings(Strict):
    """One source system the hub pulls from (or pushes to)."""

    adapter: str = Field(description="Import path of the adapter class, 'package.module:Class'.")
    enabled: bool = True
    mapping: str | None = Field(default=None, description="Mapping file name under mappings/.")
    options: dict[str, Any] = Field(default_factory=dict, description="Adapter-specific settings.")
    batch_size: int = Field(default=5000, ge=1, le=100_000)


class DemoSettings(Strict):
    """What `carehub demo` seeds before it syncs, and what it runs after."""

    seeders: list[str] = Field(
        default_factory=list, description="Import paths 'module:function' called with the settings."
    )
    people: int = Field(default=2000, ge=1, description="How many synthetic people the seeders make.")
    after_sync: list[str] = Field(
        default_factory=list,
        description="Import paths 'module:function' called with the settings once the sources are synced.",
    )
    simulators: dict[str, int] = Field(
        default_factory=dict,
        description="Simulators `carehub demo` starts first (`carehub simulate NAME --port PORT`, the "
                    "carehub.simulators registry) and stops when it ends: name -> port.",
    )
    enable_sources: list[str] = Field(
        default_factory=list, description="Sources switched on for the demo run (the simulators' systems).")


class PipelineSettings(Strict):
    """What the ingest pipeline adds to every record."""

    enrichers: list[str] = Field(
        default_factory=list,
        description="Import paths 'module:factory'; each factory(store) returns an object with enrich(models).",
    )


class IssuerSettings(Strict):
    """One token issuer the hub trusts (an Entra ID tenant, an OIDC provider).

    An Entra ID tenant signs two forms of token: v2.0 (``iss`` is
    ``https://login.microsoftonline.com/{tenant}/v2.0``, ``aud`` the app's client id) and v1.0
    (``iss`` is ``https://sts.windows.net/{tenant}/``, ``aud`` the app id URI); ``issuer_forms``
    and ``audiences`` accept both. Roles come from ``role_claim`` (app roles) and from groups
    named in ``group_roles``.
    """

    issuer: str = Field(description="The `iss` claim tokens from this issuer carry.")
    issuer_forms: list[str] = Field(
        default_factory=list,
        description="Further `iss` values of the same issuer (Entra ID v1.0 tokens: https://sts.windows.net/{tenant}/).")
    jwks_uri: str | None = Field(default=None, description="HTTPS address of the issuer's JWKS.")
    jwks_file: Path | None = Field(default=None, description="A local JWKS file (relative to the config folder).")
    audiences: list[str] = Field(
        default_factory=list,
        description="`aud` values accepted from this issuer (the app's client id, its app id URI); "
                    "empty for [auth] audience.")
    role_claim: str | None = Field(default=None, description="Claim holding roles; empty for [auth] role_claim.")
    group_claim: str | None = Field(default=None, description="Claim holding group ids (Entra ID: groups).")
    group_roles: dict[str, str] = Field(
        default_factory=dict, description="Group id -> the role its members hold (from group_claim).")
    team_claim: str | None = Field(
        default=None, description="Claim holding the team code; empty for [auth] team_claim.")

    @model_validator(mode="after")
    def _one_key_source(self) -> IssuerSettings:
        if bool(self.jwks_uri) == bool(self.jwks_file):
            raise ValueError(f"issuer {self.issuer!r} needs exactly one of jwks_uri or jwks_file")
        if self.group_roles and not self.group_claim:
            raise ValueError(f"issuer {self.issuer!r} maps groups to roles but names no group_claim")
        return self


class DemoUser(Strict):
    """A user the demo sign-in page offers (tokens from the local demo issuer)."""

    user: str = Field(description="Token subject, e.g. sw.amira.")
    name: str = Field(description="Name shown on the picker.")
    role: str
    team: str | None = None


class AuthSettings(Strict):
    """How the hub authenticates callers: OAuth2 bearer JWTs signed RS256."""

    audience: str = Field(
        default="carehub",
        description="The `aud` of the demo issuer's tokens, and of every issuer's that names no audiences.")
    issuers: list[IssuerSettings] = Field(default_factory=list, description="Trusted issuers besides the demo one.")
    clock_skew_seconds: int = Field(default=60, ge=0, le=600, description="Leeway on exp/nbf/iat.")
    jwks_cache_seconds: int = Field(default=300, ge=0, description="How long a fetched JWKS is trusted.")
    role_claim: str = Field(default="roles", description="Claim holding the caller's roles (a list or a string).")
    team_claim: str = Field(default="team", description="Claim holding the caller's team code.")
    demo: bool = Field(
        default=False,
        description="The local demo issuer and the sign-in page that hands its tokens to anyone: for the demo only "
                    "(`carehub demo` switches it on for the server it starts). Never beside [[auth.issuers]].")
    demo_issuer: str = Field(
        default="https://carehub.local/demo", description="The `iss` of the local demo issuer's tokens.")
    demo_ttl_seconds: int = Field(default=3600, ge=60, le=86_400, description="Default life of a demo token.")
    policy_file: str = Field(default="policy.toml", description="Role policy, under the config folder.")
    teams_file: str | None = Field(
        default="teams.toml",
        description="The council's teams (codes, names, service areas) that tokens, episodes, seals and mappings "
                    "name: reference data, under the config folder. Empty: no teams.")
    demo_users: list[DemoUser] = Field(default_factory=list, description="Users the demo sign-in page offers.")
    identifier_base: str = Field(
        default="https://carehub.example.gov.uk/Id",
        description="Base URL of the council's own FHIR identifier systems (local ids, EDRMS ids).",
    )


class TransitionSettings(Strict):
    """Transitions to adult services: who is due (docs/transitions.md) and the adults' case system."""

    from_age: int = Field(default=14, ge=0, le=18, description="Youngest age the due list shows.")
    to_age: int = Field(default=25, ge=18, le=26, description="Care leavers and EHC plans are followed to this age.")
    assessment_by_months: int = Field(
        default=210, ge=12, le=216, description="Transition assessment due by this age in months (210: 17 years 6).")
    adults_target: str = Field(
        default="adults_case", description="Delivery target (subscriptions file) that takes the adult referral.")
    adults_system: dict[str, Any] = Field(
        default_factory=dict,
        description="How the hub follows a referral in the adults' system: 'client' (import path) and its options.")


class EdrmsSettings(Strict):
    """The council's EDRMS, reached over CMIS 1.1 (edrms/, docs/edrms.md)."""

    enabled: bool = Field(default=False, description="Pull documents on the schedule and push metadata back.")
    service_url: str = Field(
        default="http://127.0.0.1:8095/alfresco/api/-default-/public/cmis/versions/1.1/browser",
        description="The CMIS service URL: the browser binding's, or the AtomPub service document's.")
    repository: str = Field(default="edrms", max_length=64, description="The hub's name for this repository.")
    repository_id: str | None = Field(default=None, description="Which repository of the service; the first if empty.")
    user: str | None = Field(default=None, description="Basic authentication user.")
    password: SecretStr | None = Field(default=None, description="Basic authentication password.")
    token: SecretStr | None = Field(default=None, description="A bearer token (instead of user and password).")
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    page_size: int = Field(default=100, ge=1, le=10_000, description="maxItems asked per page (the repository may "
                                                                       "cap it).")
    use_change_log: bool = Field(
        default=True, description="Read getContentChanges when the repository's capabilityChanges allows it.")
    document_type: str = Field(default="cmis:document", description="The CMIS type queried (FROM ...).")
    properties: dict[str, str] = Field(
        default_factory=lambda: {
            "person_id": "sc:personId", "nhs_number": "sc:nhsNumber", "client_id": "sc:clientId",
            "case_id": "sc:caseId", "document_type": "sc:documentType", "record_class": "sc:recordClass",
            "author": "sc:author", "retention_date": "sc:retentionDate", "legal_hold": "sc:legalHold"},
        description="The repository's property for each thing the hub reads or writes back.")
    client_id_system: str = Field(default="legacy_escr",
                                  description="Identifier system of the legacy client ids found in documents.")
    retention_file: str = Field(default="retention.toml", description="Retention rules and legal holds "
                                                                        "(under config/, or a path).")


class WorkerSettings(Strict):
    """How `carehub worker` paces itself, holds its claims and shares the scheduler."""

    poll_seconds: float = Field(default=0.5, gt=0, description="Sleep when there is nothing to deliver.")
    lease_seconds: float = Field(
        default=60, gt=0,
        description="How long a claimed batch (rows or a lane) stays leased before another worker takes it.")
    leader_check_seconds: float = Field(
        default=2, gt=0, description="How often a worker tries to become (or checks it still is) scheduler leader.")
    takeover_seconds: float = Field(
        default=15, ge=2, description="Within how long another worker takes the scheduler over when its leader dies.")
    sqlite_lease_seconds: float = Field(
        default=30, gt=0, description="On SQLite, how long the one worker's lease lasts between heartbeats.")


class FinanceSettings(Strict):
    """The finance link: its mapping to the ledger, how the finance system pulls, actuals and variances."""

    mapping_file: str = Field(
        default="finance.toml",
        description="Cost centres, subjectives, VAT treatment and the provider-to-supplier cross-reference.")
    feed_max_limit: int = Field(default=5000, ge=1, le=100_000, description="Most versions one feed page carries.")
    variance_threshold_percent: float = Field(
        default=10.0, ge=0, description="A line whose actual spend differs from plan by more than this is flagged.")
    actuals_drop_folder: str = Field(
        default="{data_dir}/finance/actuals",
        description="Where the finance system drops CSVs of actuals (processed/ and failed/ made beside them).")
    actuals_min_age_seconds: float = Field(
        default=5, ge=0, description="A dropped file younger than this is left for the next run (still copying).")
    derive_batch: int = Field(default=2000, ge=1, le=50_000, description="Change events read per derivation step.")


class ApiSettings(Strict):
    """How the web application is put together."""

    hot_routes: bool = Field(
        default=True, description="Serve GET /api/persons/{id}/record and /timeline through the direct way in "
                                  "(hub.api.hot) rather than FastAPI's router; the answers are the same.")


class Settings(BaseSettings):
    """Care Hub settings; see config/hub.toml for every key with a comment."""

    model_config = SettingsConfigDict(
        env_prefix="CAREHUB_", env_nested_delimiter="__", extra="forbid", case_sensitive=False,
    )

    database_url: str = Field(default="sqlite:///var/carehub.db", description="SQLAlchemy URL of the store.")
    data_dir: Path = Field(default=Path("var"), description="Where the demo keeps its files.")
    sql_echo: bool = False
    log_level: str = "INFO"
    survivorship_file: str = Field(
        default="survivorship.toml", description="Which source wins each field (under config/, or a path).")
    identity_file: str = Field(
        default="identity.toml", description="Identity resolution: thresholds, guards, blocking, weights.")
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    subscriptions_file: str = Field(
        default="subscriptions.toml", description="Delivery targets and subscriptions (under config/, or a path).")
    schedules_file: str = Field(
        default="schedules.toml", description="Scheduled jobs (under config/, or a path).")
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    transitions: TransitionSettings = Field(default_factory=TransitionSettings)
    finance: FinanceSettings = Field(default_factory=FinanceSettings)
    edrms: EdrmsSettings = Field(default_factory=EdrmsSettings)

    def config_path(self, name: str | Path) -> Path:
        """A file the settings name: absolute as given, else relative to the folder of hub.toml."""
        path = Path(name)
        return path if path.is_absolute() else config_dir() / path

    def named_files(self) -> dict[str, Path]:
        """Every configuration file these settings name, by the key that names it."""
        return {
            "survivorship_file": self.config_path(self.survivorship_file),
            "identity_file": self.config_path(self.identity_file),
            "subscriptions_file": self.config_path(self.subscriptions_file),
            "schedules_file": self.config_path(self.schedules_file),
            "auth.policy_file": self.config_path(self.auth.policy_file),
            **({"auth.teams_file": self.config_path(self.auth.teams_file)} if self.auth.teams_file else {}),
            "finance.mapping_file": self.config_path(self.finance.mapping_file),
            "edrms.retention_file": self.config_path(self.edrms.retention_file),
        }

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = config_file()
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load settings once; raise ConfigError listing every problem."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{config_file()}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"configuration is invalid: {problems}") from exc


def reload_settings() -> Settings:
    """Forget cached settings (after the environment changed) and load them again."""
    get_settings.cache_clear()
    return get_settings()
