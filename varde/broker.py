"""Administration of the local Mosquitto through its dynamic-security plugin: gateway logins and ACL roles.

Commands go to `$CONTROL/dynamic-security/v1` as the admin login, the way `mosquitto_ctrl` does it, so a
gateway is provisioned or revoked at run time without restarting the broker.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from store.settings import instance_login
from vitals.topics import (
    GATEWAY_ID_PATTERN,
    INGEST_QUESTIONNAIRES_SUBSCRIPTION,
    INGEST_SHARE_GROUP,
    INGEST_SHARED_SUBSCRIPTION,
    PREFIX,
    plan_topic,
    questionnaires_topic,
    readings_topic,
    receipts_topic,
    status_topic,
)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"


class BrokerAdminError(RuntimeError):
    pass


def password_digest(username: str, password: str) -> str:
    """What a service login's text description records of the password it was last given, so `ensure` can tell a
    change without trying the login. Service passwords are random tokens: one SHA-256 is enough to hide them."""
    return "varde-password-sha256:" + hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()


def _acl(acltype: str, topic: str, allow: bool = True, priority: int = 0) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": allow, "priority": priority}


def gateway_role(gateway_id: str) -> dict[str, Any]:
    """A gateway may publish only its own readings, questionnaire responses and status, and read only its own plan
    and receipts."""
    return {
        "rolename": f"gateway-{gateway_id}",
        "acls": [
            _acl("publishClientSend", readings_topic(gateway_id)),
            _acl("publishClientSend", questionnaires_topic(gateway_id)),
            _acl("publishClientSend", status_topic(gateway_id)),
            _acl("subscribePattern", plan_topic(gateway_id)),
            _acl("subscribePattern", receipts_topic(gateway_id)),
            _acl("publishClientReceive", plan_topic(gateway_id)),
            _acl("publishClientReceive", receipts_topic(gateway_id)),
        ],
    }


SERVICE_ROLES: dict[str, list[dict[str, Any]]] = {
    # Ingest reads every gateway's readings and questionnaire responses (as shared subscriptions) and status, and
    # publishes nothing.
    "ingest": [
        _acl("subscribePattern", INGEST_SHARED_SUBSCRIPTION),
        _acl("subscribePattern", f"$share/{INGEST_SHARE_GROUP}/{PREFIX}/+/status"),
        _acl("subscribePattern", INGEST_QUESTIONNAIRES_SUBSCRIPTION),
        _acl("subscribePattern", f"{PREFIX}/+/readings"),
        _acl("subscribePattern", f"{PREFIX}/+/questionnaires"),
        _acl("subscribePattern", f"{PREFIX}/+/status"),
        _acl("publishClientReceive", f"{PREFIX}/+/readings"),
        _acl("publishClientReceive", f"{PREFIX}/+/questionnaires"),
        _acl("publishClientReceive", f"{PREFIX}/+/status"),
    ],
    # The API publishes plans and receipts to gateways and follows their status.
    "api": [
        _acl("publishClientSend", f"{PREFIX}/+/plan"),
        _acl("publishClientSend", f"{PREFIX}/+/receipts"),
        _acl("subscribePattern", f"{PREFIX}/+/status"),
        _acl("publishClientReceive", f"{PREFIX}/+/status"),
    ],
}


class DynSecAdmin:
    """A short-lived admin connection that sends dynamic-security commands and waits for their answers."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        timeout: float = 10.0,
        *,
        tls_ca_file: str | None = None,
    ) -> None:
        self._timeout = timeout
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._cond = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"varde-admin-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self._client.username_pw_set(username, password)
        if tls_ca_file:
            self._client.tls_set(ca_certs=tls_ca_file)
        self._client.on_message = self._on_message
        connected = threading.Event()
        self._connect_rc: Any = None

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            self._connect_rc = rc
            connected.set()

        self._client.on_connect = on_connect
        try:
            self._client.connect(host, port)
        except (OSError, ValueError) as exc:
            raise BrokerAdminError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from None
        self._client.loop_start()
        if not connected.wait(timeout) or self._connect_rc is None or self._connect_rc.is_failure:
            self.close()
            raise BrokerAdminError(f"broker admin login refused at {host}:{port} ({self._connect_rc})")
        result, _mid = self._client.subscribe(RESPONSE_TOPIC, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            self.close()
            raise BrokerAdminError("cannot subscribe to the dynamic-security response topic")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        doc = json.loads(message.payload)
        responses = list(doc.get("responses", []))
        key = str(responses[0].get("correlationData", "")) if responses else ""
        with self._cond:
            self._responses[key] = responses
            self._cond.notify_all()

    def run(self, commands: Sequence[dict[str, Any]], *, tolerate: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Send commands in one message; raise on any error whose text is not in `tolerate`."""
        key = uuid.uuid4().hex
        tagged = [{**command, "correlationData": key} for command in commands]
        info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        info.wait_for_publish(self._timeout)
        with self._cond:
            if not self._cond.wait_for(lambda: key in self._responses, self._timeout):
                raise BrokerAdminError("no answer from the broker's dynamic-security plugin")
            responses = self._responses.pop(key)
        for response in responses:
            error = response.get("error")
            if error and not any(t in str(error) for t in tolerate):
                raise BrokerAdminError(f"broker refused {response.get('command')}: {error}")
        return responses

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def __enter__(self) -> DynSecAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- operations -------------------------------------------------------------------------------------------

    def ensure_service_logins(self, passwords: Mapping[str, str], instances: Mapping[str, Iterable[str]]) -> list[str]:
        """Create the service roles and one login per service instance (idempotent); returns the logins.

        `passwords` maps service name (ingest, api) → that service's password, `instances` service name → the names
        of its instances (ingest worker ids, API replicas). Each instance's login `varde-<service>-<instance>` is
        bound to the same client id, so a holder of a service password can connect as no gateway and as no
        instance of another service. The shared, unbound `varde-ingest` / `varde-api` logins of earlier versions
        are deleted (their connections are kicked once, on the upgrade)."""
        commands: list[dict[str, Any]] = [
            {
                "command": "setDefaultACLAccess",
                "acls": [
                    {"acltype": "publishClientSend", "allow": False},
                    {"acltype": "publishClientReceive", "allow": False},
                    {"acltype": "subscribe", "allow": False},
                    {"acltype": "unsubscribe", "allow": True},
                ],
            }
        ]
        for role, acls in SERVICE_ROLES.items():
            commands.append({"command": "createRole", "rolename": f"service-{role}", "acls": acls})
        self.run(commands, tolerate=("already exists",))
        # A role made by an earlier version lacks the ACLs added since: add each one (known ones are refused).
        self.run(
            [
                {"command": "addRoleACL", "rolename": f"service-{role}", **acl}
                for role, acls in SERVICE_ROLES.items()
                for acl in acls
            ],
            tolerate=("already exists",),
        )
        ensured: list[str] = []
        for service, names in instances.items():
            for instance in names:
                username = instance_login(f"varde-{service}", instance)
                self._ensure_service_login(username, f"service-{service}", passwords[service])
                ensured.append(username)
        self.delete_service_logins([f"varde-{service}" for service in SERVICE_ROLES])
        return ensured

    def _ensure_service_login(self, username: str, rolename: str, password: str) -> None:
        """Create the login bound to its own client id, or repair what differs. Every dynsec change to a client
        kicks its live connection (Mosquitto 2.0), so a login that is bound, has its role and was last given this
        password (its digest is kept in the client's text description) is left untouched: a second
        `varde stack up` must not disconnect running workers. A probe login cannot tell instead: the login may
        connect only with the client id of the running instance, and that would take over its session."""
        digest = password_digest(username, password)
        found = self.run([{"command": "getClient", "username": username}], tolerate=("not found",))
        client = (found[0].get("data") or {}).get("client") if found else None
        if not client:
            self.run(
                [
                    {
                        "command": "createClient",
                        "username": username,
                        "password": password,
                        "clientid": username,
                        "textdescription": digest,
                        "roles": [{"rolename": rolename}],
                    }
                ]
            )
            return
        if rolename not in {r.get("rolename") for r in client.get("roles", [])}:
            self.run([{"command": "addClientRole", "username": username, "rolename": rolename}])
        changes: dict[str, Any] = {}
        if client.get("clientid") != username:
            changes["clientid"] = username
        if client.get("textdescription") != digest:
            changes.update(password=password, textdescription=digest)
        if changes:
            self.run([{"command": "modifyClient", "username": username, **changes}])

    def delete_service_logins(self, usernames: Sequence[str]) -> None:
        """Delete service logins (a retired instance, the shared logins of earlier versions); kicks their
        connections; unknown ones are skipped."""
        if usernames:
            self.run([{"command": "deleteClient", "username": u} for u in usernames], tolerate=("not found",))

    def bind_gateway_client_ids(self) -> list[str]:
        """Bind gateway logins made before client ids were bound (each gateway may connect only with its own id);
        returns the ones changed. Each change kicks that gateway once; it reconnects with its own id."""
        listed = self.run([{"command": "listClients", "verbose": True, "count": -1}])
        clients = (listed[0].get("data") or {}).get("clients", []) if listed else []
        changed = [
            str(c["username"])
            for c in clients
            if GATEWAY_ID_PATTERN.fullmatch(str(c.get("username", ""))) and c.get("clientid") != c["username"]
        ]
        for gateway_id in changed:
            self.run([{"command": "setClientId", "username": gateway_id, "clientid": gateway_id}])
        return changed

    def add_gateway(self, gateway_id: str, password: str) -> None:
        role = gateway_role(gateway_id)
        self.run(
            [
                {"command": "createRole", **role},
                {
                    "command": "createClient",
                    "username": gateway_id,
                    "password": password,
                    # The login may connect only with its own client id, so it cannot take over another client's
                    # session (the ingest workers' `varde-ingest-<host>`, another gateway's).
                    "clientid": gateway_id,
                    "roles": [{"rolename": role["rolename"]}],
                },
            ]
        )

    def set_gateway_password(self, gateway_id: str, password: str) -> None:
        self.run([{"command": "setClientPassword", "username": gateway_id, "password": password}])

    def revoke_gateway(self, gateway_id: str) -> None:
        """Disable the login and kick any live connection of the gateway at once."""
        self.run([{"command": "disableClient", "username": gateway_id}])
