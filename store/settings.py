"""The one settings object of the cloud services: environment (`VARDE_` prefix) first, then the local stack's
`.varde/stack.json` and `.varde/secrets.json`, so a developer who ran `varde stack up` needs to set nothing."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def varde_home() -> Path:
    """Where the local stack keeps its state: `VARDE_HOME`, else `.varde` in the working directory."""
    return Path(os.environ.get("VARDE_HOME") or Path.cwd() / ".varde").resolve()


INSTANCE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
"""A service instance's name (an ingest worker id, an API replica): no MQTT wildcards, no separators."""


def instance_login(base_username: str, instance: str) -> str:
    """The broker login of one service instance, which is also the only client id it may connect with:
    `varde-ingest-ingest-1`, `varde-api-api-2`. One login per instance, bound to its client id on the broker, so no
    holder of a service password can take over a gateway's session or another instance's."""
    if not INSTANCE_NAME_PATTERN.fullmatch(instance):
        raise ValueError(f"{instance!r} is not a service instance name (letters, digits, '.', '_', '-'; at most 63)")
    return f"{base_username}-{instance}"


def default_instance_name() -> str:
    """An instance's name when none is configured: the host name (a container's, a VM's)."""
    return socket.gethostname()


def ingest_worker_id(given: str | None = None) -> str:
    """An ingest worker's id: `--worker-id`, else $VARDE_INGEST_WORKER_ID, else the host name."""
    return given or os.environ.get("VARDE_INGEST_WORKER_ID") or default_instance_name()


class _StackFileSource(PydanticBaseSettingsSource):
    """Values written by `varde stack up`; lower precedence than the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values().get(field_name), field_name, False

    def _values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if _production(self.current_state):
            return values  # production secrets come from the environment only
        home = varde_home()
        for name in ("stack.json", "secrets.json"):
            path = home / name
            if path.is_file():
                doc = json.loads(path.read_text())
                values.update({k: v for k, v in doc.items() if k in Settings.model_fields and v is not None})
        return values

    def __call__(self) -> dict[str, Any]:
        return self._values()


def _production(state: dict[str, Any]) -> bool:
    return (state.get("environment") or os.environ.get("VARDE_ENVIRONMENT")) == "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VARDE_", extra="ignore")

    database_url: str | None = None
    database_pool_min: int = 1
    database_pool_max: int = 20

    mqtt_url: str | None = None
    """mqtt://user:password@host:port — an external broker; overrides host, port and the ingest login (its user is
    the prefix: a worker logs in as `<user>-<worker id>`)."""
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_tls_ca_file: Path | None = None
    mqtt_admin_username: str | None = None
    mqtt_admin_password: str | None = None
    mqtt_ingest_username: str | None = None
    mqtt_ingest_password: str | None = None
    mqtt_api_username: str | None = None
    mqtt_api_password: str | None = None
    api_replica: str | None = None
    """This API process's instance name; its broker login and client id are `<mqtt_api_username>-<api_replica>`
    (the login is made by `varde broker init --api-replica` / `varde stack up`). Unset: the host name."""
    broker_kind: Literal["mosquitto", "emqx"] = "mosquitto"
    """mosquitto: logins and ACLs through the dynamic-security plugin; emqx: in PostgreSQL tables an EMQX cluster's
    authenticator and authorizer read (deploy/emqx/), revoked clients kicked through the EMQX REST API."""
    emqx_api_url: str | None = None
    """EMQX REST API base, e.g. http://emqx-1.varde.internal:18083 (VARDE_BROKER_KIND=emqx)."""
    emqx_api_key: str | None = None
    emqx_api_secret: str | None = None
    emqx_db_password: str | None = None
    """Password `varde broker init` gives the read-only PostgreSQL role `varde_emqx` EMQX logs in as."""

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_url: str | None = None
    jwt_secret: str | None = None
    token_ttl_minutes: int = 30
    session_access_minutes: int = 10
    """Dashboard sessions: lifetime of each access token; the page renews it silently while it is in use."""
    session_idle_minutes: int = 60
    """Dashboard sessions end after this long without use (no input in the page, no renewal)."""
    session_max_hours: int = 14
    """Dashboard sessions end this long after sign-in whatever happens (a shift plus handover)."""
    escalation_sms_url: str | None = None
    """An SMS gateway's HTTP endpoint: escalation notices are POSTed as JSON {"to", "text"}."""
    escalation_smtp_host: str | None = None
    escalation_smtp_port: int = 25
    escalation_mail_from: str = "varde@localhost"
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = None
    login_attempts_per_account: int = 10
    """Failed (or unfinished) sign-ins per account and minute, counted over every API replica (in PostgreSQL)."""
    login_attempts_per_address: int = 100
    """Failed sign-ins per client address and minute over all accounts; higher, as a hospital may share one address."""
    forwarded_allow_ips: str = ""
    """Comma-separated addresses (or CIDR networks) of the reverse proxies whose X-Forwarded-For/-Proto the API
    trusts; empty: none, so the client address and scheme are those of the TCP connection."""

    # The patient app ("Min oppfølging") and the OpenID Connect relying party (clinician_api/citizen). Patients sign
    # in through a national issuer (ID-porten/Helsenorge: the `pid` claim is the national identity number), staff
    # through a HelseID-like issuer (the HPR-number claim names the user). An audience with no issuer has no button.
    public_url: str | None = None
    """The API's address as browsers reach it (https://varde.example.no); redirect URIs are built on it. Unset: the
    address of the request."""
    oidc_patient_issuer: str | None = None
    oidc_patient_client_id: str | None = None
    oidc_patient_client_secret: str | None = None
    oidc_patient_scope: str = "openid profile pid"
    oidc_patient_id_claim: str = "pid"
    oidc_staff_issuer: str | None = None
    oidc_staff_client_id: str | None = None
    oidc_staff_client_secret: str | None = None
    oidc_staff_scope: str = "openid profile hpr"
    oidc_staff_hpr_claim: str = "hpr_number"
    """HelseID names it `helseid://claims/hpr/hpr_number`."""
    citizen_session_idle_minutes: int = 30
    citizen_session_max_hours: int = 12
    citizen_password_login: bool | None = None
    """Local username/password sign-in for patients and relatives (the offline demo). Unset: on in development,
    off in production."""

    metrics_host: str = "127.0.0.1"
    """Address of each process's operations endpoint (/metrics, /healthz, /readyz); never the public port."""
    metrics_port: int = 0
    """Port of the operations endpoint when the command line gives none (0: not served)."""

    repeat_timeout_minutes: int = 30
    """A single yellow reading asks the patient's page for a repeat measurement; the alarm opens when the repeat
    confirms it or none comes within this many minutes (docs/rules.md). 0: yellow readings alarm at once."""

    retention_readings_years: int = 10
    """Readings are kept this many years (the record's retention rules); a yearly partition is dropped once its whole
    year is older. 0: kept for ever."""
    retention_audit_log_years: int = 15
    """Audit rows (who read or changed what) are kept longer than the readings they are about. 0: for ever."""
    retention_dead_letter_days: int = 90
    """Rejected messages (raw payload and reason) are kept long enough to be looked into and replayed. 0: for ever."""
    retention_database_url: str | None = None
    """Connection of the retention job when it must differ from the services' (a role that owns the readings
    partitions and is a member of varde_retention); default: database_url."""
    backup_max_age_hours: float = 26.0
    """Newest completed backup older than this: `varde_backup_too_old` is 1 and the operators' alert fires."""
    pgbackrest_config: Path | None = None
    """pgBackRest configuration file for `varde db backup` / `restore` (the local stack writes its own)."""
    pgbackrest_stanza: str = "varde"

    worklist_inactive_days: int = Field(default=3, ge=1, le=365)
    """The worklist's inactive patients: an active patient with no reading for this many days (VKP "inactive
    patient")."""
    worklist_plan_review_days: int = Field(default=90, ge=1, le=3650)
    """The worklist's plans due for review: an active plan this many days after its activation."""

    environment: Literal["development", "production"] = "development"
    """production: nothing is read from the local stack's files (secrets only from the environment), the token
    secret must be at least 32 characters, and browser origins must use https."""
    cors_allow_origins: str = ""
    """Comma-separated origins (scheme://host[:port]) whose web pages may call the API; empty: CORS off."""

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_allow_origins.split(",") if o.strip()]

    @property
    def trusted_proxies(self) -> str:
        """VARDE_FORWARDED_ALLOW_IPS normalised for uvicorn (comma-separated, no blanks); empty when none."""
        return ",".join(p.strip() for p in self.forwarded_allow_ips.split(",") if p.strip())

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        for proxy in filter(None, self.trusted_proxies.split(",")):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"VARDE_FORWARDED_ALLOW_IPS: {proxy!r} is not an address or network of a proxy (and '*' is "
                    "refused: a client that reaches the API directly could then claim any address)"
                ) from None
        for origin in self.cors_origins:
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in ("https", "http") or not parts.hostname or parts.path:
                raise ValueError(f"VARDE_CORS_ALLOW_ORIGINS: {origin!r} is not an origin like https://app.example.no")
            if self.environment == "production" and parts.scheme != "https":
                raise ValueError(f"VARDE_CORS_ALLOW_ORIGINS: {origin!r} must use https in production")
        if self.api_replica is not None and not INSTANCE_NAME_PATTERN.fullmatch(self.api_replica):
            raise ValueError(f"VARDE_API_REPLICA: {self.api_replica!r} is not an instance name (letters, digits, ._-)")
        if self.environment == "production" and self.jwt_secret is not None and len(self.jwt_secret) < 32:
            raise ValueError("VARDE_JWT_SECRET must be at least 32 characters in production")
        return self

    @model_validator(mode="after")
    def _split_mqtt_url(self) -> Settings:
        if self.mqtt_url:
            parts = urlsplit(self.mqtt_url)
            if parts.scheme not in ("mqtt", "mqtts", "tcp"):
                raise ValueError(f"VARDE_MQTT_URL must start with mqtt://, got {parts.scheme!r}")
            self.mqtt_host = parts.hostname or self.mqtt_host
            self.mqtt_port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
            if parts.username:
                self.mqtt_ingest_username = unquote(parts.username)
                self.mqtt_ingest_password = unquote(parts.password or "")
        return self

    def mqtt_service_login(self, service: Literal["ingest", "api"], instance: str) -> tuple[str, str | None] | None:
        """(username = client id, password) of one instance of `service`, or None when the service has no login
        (an anonymous private broker)."""
        base = self.mqtt_ingest_username if service == "ingest" else self.mqtt_api_username
        password = self.mqtt_ingest_password if service == "ingest" else self.mqtt_api_password
        return (instance_login(base, instance), password) if base else None

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "no database configured: run `varde stack up` or set VARDE_DATABASE_URL "
                f"(looked in the environment and {varde_home() / 'stack.json'})"
            )
        return self.database_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _StackFileSource(settings_cls)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
