"""Each service instance's broker login (= its only client id) is derived from its instance name in one place."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from store.settings import Settings, instance_login
from varde.broker import password_digest


def test_an_instance_login_is_the_service_prefix_and_the_instance_name() -> None:
    assert instance_login("varde-ingest", "ingest-1") == "varde-ingest-ingest-1"
    assert instance_login("varde-api", "pool-a1b2c3-api2") == "varde-api-pool-a1b2c3-api2"
    assert instance_login("varde-ingest", "vm.example_1") == "varde-ingest-vm.example_1"


@pytest.mark.parametrize("name", ["", "-lead", "a/b", "+", "#", "a b", "x" * 64, "gw-1\x00"])
def test_a_name_that_is_no_instance_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a service instance name"):
        instance_login("varde-ingest", name)


def test_each_service_logs_in_with_its_own_password_under_its_instance_login() -> None:
    settings = Settings(
        mqtt_ingest_username="varde-ingest",
        mqtt_ingest_password="ingest-pw",
        mqtt_api_username="varde-api",
        mqtt_api_password="api-pw",
    )
    assert settings.mqtt_service_login("ingest", "ingest-2") == ("varde-ingest-ingest-2", "ingest-pw")
    assert settings.mqtt_service_login("api", "api-1") == ("varde-api-api-1", "api-pw")
    assert Settings(mqtt_ingest_username=None).mqtt_service_login("ingest", "w") is None


def test_an_api_replica_name_with_mqtt_wildcards_is_refused() -> None:
    assert Settings(api_replica="api-2").api_replica == "api-2"
    with pytest.raises(ValidationError, match="VARDE_API_REPLICA"):
        Settings(api_replica="api/#")


def test_the_password_digest_changes_with_the_password_and_the_login_and_hides_the_password() -> None:
    digest = password_digest("varde-ingest-1", "secret-token")
    assert digest == password_digest("varde-ingest-1", "secret-token")
    assert digest != password_digest("varde-ingest-1", "secret-tokem")
    assert digest != password_digest("varde-ingest-2", "secret-token")
    assert "secret-token" not in digest and digest.startswith("varde-password-sha256:")
