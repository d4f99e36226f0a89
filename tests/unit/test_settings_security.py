"""Settings that guard secrets and browser access: production reads secrets only from the environment, refuses a
short token secret, and CORS takes only explicit https origins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from store.settings import Settings

_STRONG = "x" * 32


@pytest.fixture
def stack_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "secrets.json").write_text(json.dumps({"jwt_secret": "from-the-stack-file-0123456789abcdef"}))
    (tmp_path / "stack.json").write_text(json.dumps({"database_url": "postgresql://stack@127.0.0.1:1/varde"}))
    monkeypatch.setenv("VARDE_HOME", str(tmp_path))
    for name in ("VARDE_ENVIRONMENT", "VARDE_JWT_SECRET", "VARDE_DATABASE_URL", "VARDE_CORS_ALLOW_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_development_falls_back_to_the_local_stacks_files(stack_home: Path) -> None:
    settings = Settings()
    assert settings.jwt_secret == "from-the-stack-file-0123456789abcdef"
    assert settings.database_url == "postgresql://stack@127.0.0.1:1/varde"


def test_production_takes_secrets_only_from_the_environment(stack_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARDE_ENVIRONMENT", "production")
    assert Settings().jwt_secret is None and Settings().database_url is None
    monkeypatch.setenv("VARDE_JWT_SECRET", _STRONG)
    assert Settings().jwt_secret == _STRONG


def test_production_refuses_a_short_token_secret(stack_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARDE_ENVIRONMENT", "production")
    monkeypatch.setenv("VARDE_JWT_SECRET", "changeme")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings()


def test_cors_is_off_unless_origins_are_listed(stack_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().cors_origins == []
    monkeypatch.setenv("VARDE_CORS_ALLOW_ORIGINS", "https://portal.example.no/, http://localhost:5173")
    assert Settings().cors_origins == ["https://portal.example.no", "http://localhost:5173"]


@pytest.mark.parametrize("origin", ["*", "portal.example.no", "https://portal.example.no/app", "ftp://x.example"])
def test_cors_refuses_what_is_not_an_origin(stack_home: Path, origin: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(cors_allow_origins=origin)


def test_production_cors_origins_must_use_https(stack_home: Path) -> None:
    with pytest.raises(ValidationError, match="must use https"):
        Settings(environment="production", jwt_secret=_STRONG, cors_allow_origins="http://portal.example.no")
    assert Settings(environment="production", cors_allow_origins="https://portal.example.no").cors_origins


def test_no_proxy_is_trusted_unless_named(stack_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VARDE_FORWARDED_ALLOW_IPS", raising=False)
    assert Settings().trusted_proxies == ""
    assert (
        Settings(forwarded_allow_ips=" 172.30.0.10 , 10.1.0.0/16,::1 ").trusted_proxies == "172.30.0.10,10.1.0.0/16,::1"
    )


@pytest.mark.parametrize("proxies", ["*", "proxy.example", "10.0.0.300", "127.0.0.1,*"])
def test_trusted_proxies_must_be_addresses_or_networks(stack_home: Path, proxies: str) -> None:
    with pytest.raises(ValidationError, match="VARDE_FORWARDED_ALLOW_IPS"):
        Settings(forwarded_allow_ips=proxies)
