#!/bin/sh
# First start only: create the dynamic-security file with the admin login. Later changes (service logins,
# gateways) are made at run time over $CONTROL by `varde broker init` and `varde gateway add/revoke`.
set -eu
file=/mosquitto/dynsec/dynamic-security.json
if [ ! -f "$file" ]; then
    : "${VARDE_MQTT_ADMIN_PASSWORD:?VARDE_MQTT_ADMIN_PASSWORD must be set}"
    mosquitto_ctrl dynsec init "$file" admin "$VARDE_MQTT_ADMIN_PASSWORD"
fi
chown -R mosquitto:mosquitto /mosquitto/dynsec /mosquitto/data
chmod 700 /mosquitto/dynsec
