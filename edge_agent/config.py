"""The gateway's one configuration file (TOML), validated into `EdgeConfig`.

Every problem is reported as `ConfigError` naming the file, the key and what is wrong, so an installer on a
Raspberry Pi can fix the file without reading a stack trace.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from vitals import MAX_PAYLOAD_BYTES, MAX_READINGS_PER_ENVELOPE, validate_gateway_id

DeviceType = Literal[
    "blood_pressure_monitor",
    "pulse_oximeter",
    "weight_scale",
    "thermometer",
    "glucose_meter",
    "heart_rate_monitor",
]

_MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
_ENVELOPE_HEAD_BYTES = 1024
"""Room left in a payload for the envelope's own fields around the readings."""


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says which file, which key and why."""


_Section = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(BaseModel):
    model_config = _Section

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together (client certificate authentication)")
        return self


class BrokerConfig(BaseModel):
    model_config = _Section

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 8883
    username: str | None = None
    """Defaults to the gateway id: the broker's ACL binds a gateway's credentials to its own topics."""
    password: SecretStr | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    session_expiry_s: Annotated[int, Field(ge=60, le=4_294_967_295)] = 7 * 24 * 3600
    """How long the broker keeps this gateway's session (subscriptions, in-flight messages) while it is away."""

    @model_validator(mode="after")
    def _one_password_source(self) -> BrokerConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give either password or password_file, not both")
        return self

    def read_password(self) -> str | None:
        """The password, read from `password_file` when that is how it is configured (trailing newline stripped)."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"broker.password_file: cannot read {self.password_file}: {exc.strerror}") from None
        return None


class OutboxConfig(BaseModel):
    model_config = _Section

    path: Path = Path("/var/lib/varde-edge/outbox.sqlite")
    max_rows: Annotated[int, Field(ge=100)] = 1_000_000
    """About 0.4 GB of SD card; eleven days of a 1 Hz oximeter plus everything else."""
    max_age_days: Annotated[float, Field(gt=0)] = 30.0


class PublisherConfig(BaseModel):
    model_config = _Section

    window: Annotated[int, Field(ge=1, le=1024)] = 32
    """Envelopes published but not yet acknowledged by the broker."""
    batch_max_readings: Annotated[int, Field(ge=1, le=MAX_READINGS_PER_ENVELOPE)] = 500
    batch_max_bytes: Annotated[int, Field(ge=4096, le=MAX_PAYLOAD_BYTES - _ENVELOPE_HEAD_BYTES)] = 128 * 1024
    batch_linger_ms: Annotated[int, Field(ge=0, le=10_000)] = 50
    """While envelopes are in flight, wait this long for a partial batch to fill before sending it."""
    status_interval_s: Annotated[float, Field(gt=0)] = 60.0
    keep_when_no_subscribers: bool = True
    """Treat PUBACK 0x10 (no matching subscribers) as not delivered: nobody stored the readings yet."""


class DeviceConfig(BaseModel):
    model_config = _Section

    address: str
    type: DeviceType
    model: Annotated[str, Field(max_length=64)] | None = None
    passkey: str | None = None
    bond: bool = False
    """Pair and bond before use (devices that require an encrypted link, e.g. most glucose meters)."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        upper = value.strip().upper()
        if not (_MAC.fullmatch(upper) or _UUID.fullmatch(upper)):
            raise ValueError(f"{value!r} is not a Bluetooth address like 'A4:C1:38:00:00:01'")
        return upper

    @field_validator("passkey")
    @classmethod
    def _passkey(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{6}", value):
            raise ValueError('passkey must be exactly six digits, written as a string (e.g. "012345")')
        return value


class BleConfig(BaseModel):
    model_config = _Section

    enabled: bool = True
    adapter: str = "hci0"
    quiet_restart_s: Annotated[float, Field(ge=10)] = 120.0
    """Restart the scanner when no advertisement at all has been seen for this long."""
    backend: Literal["bluez", "bumble"] = "bluez"
    """`bluez`: bleak on BlueZ (the default). `bumble`: the gateway drives a USB dongle itself with Bumble, for
    gateways where BlueZ is unwanted (needs `varde[bumble]` and the udev rule in docs/devices.md)."""
    bumble_transport: str = "usb:0"
    """The controller for the `bumble` backend, in Bumble's transport names (`usb:0`, `usb:0a12:0001`, …)."""
    bumble_keys: Path | None = None
    """Where the `bumble` backend keeps its bonds; default `bumble-keys.json` beside the outbox."""


class PatientScreenConfig(BaseModel):
    """The patient's local page (plan advice, schedule, questionnaires), served by the agent itself."""

    model_config = _Section

    enabled: bool = True
    bind: str = "127.0.0.1"
    """Loopback by default; the gateway's address on the home network to reach it from a tablet."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8480
    language: Literal["nb", "en"] = "nb"
    allowed_hosts: list[str] = []
    """Extra host names the page may be reached by (e.g. "varde.local"); loopback and `bind` always are."""


class EdgeConfig(BaseModel):
    """Everything one gateway needs to run."""

    model_config = _Section

    gateway_id: str
    patient_timezone: str
    broker: BrokerConfig
    outbox: OutboxConfig = OutboxConfig()
    publisher: PublisherConfig = PublisherConfig()
    ble: BleConfig = BleConfig()
    devices: list[DeviceConfig] = []
    plan_path: Path | None = None
    """Where the last received self-management plan is kept; defaults to `plan.sqlite` beside the outbox."""
    patient_screen: PatientScreenConfig = PatientScreenConfig()

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        return validate_gateway_id(value)

    @field_validator("patient_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name such as 'Europe/Oslo'") from None
        return value

    @field_validator("devices")
    @classmethod
    def _unique_addresses(cls, value: list[DeviceConfig]) -> list[DeviceConfig]:
        seen: set[str] = set()
        for device in value:
            if device.address in seen:
                raise ValueError(f"device {device.address} is listed twice")
            seen.add(device.address)
        return value

    @property
    def username(self) -> str:
        return self.broker.username or self.gateway_id

    @property
    def bumble_keys_path(self) -> Path:
        return self.ble.bumble_keys or self.outbox.path.with_name("bumble-keys.json")

    @property
    def resolved_plan_path(self) -> Path:
        return self.plan_path or self.outbox.path.with_name("plan.sqlite")

    @property
    def questionnaire_queue_path(self) -> Path:
        """Questionnaire responses awaiting the broker's acknowledgement, durable like the readings outbox."""
        return self.outbox.path.with_name("questionnaires.sqlite")

    @property
    def patient_journal_path(self) -> Path:
        return self.outbox.path.with_name("patient.sqlite")


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors(include_url=False):
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against deploy/edge/varde-edge.example.toml)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_config(text: str, source: str = "<config>") -> EdgeConfig:
    """Validate TOML text; `source` names the file in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return EdgeConfig.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: Path) -> EdgeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    config = parse_config(text, str(path))
    try:
        config.broker.read_password()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config
