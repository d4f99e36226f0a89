#!/usr/bin/env bash
# Debian packages the local stack (with its PostgreSQL extensions and tools), the browser tests and the scale-out test (HAProxy) need. Installs what is missing when run as root;
# otherwise names what is missing and exits non-zero.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
# The sign-in tests' OpenID provider (tests/oidc_provider, oidc-provider from npm) runs on Node.js.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# PostgreSQL extensions and tools of the major version installed (or the one `postgresql` brings): partitions and
# retention (pg_partman), DDL/role audit (pgaudit), backups (pgBackRest), failover (pg_auto_failover, `stack up --ha`).
pgmajor=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sed 's#.*/postgresql/\([0-9]*\)/bin#\1#' | sort -n | tail -1)
[ -n "$pgmajor" ] || pgmajor=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -1)
if [ -n "$pgmajor" ]; then
  [ -f "/usr/share/postgresql/$pgmajor/extension/pg_partman.control" ] || need+=("postgresql-$pgmajor-partman")
  [ -f "/usr/lib/postgresql/$pgmajor/lib/pgaudit.so" ] || need+=("postgresql-$pgmajor-pgaudit")
  [ -f "/usr/share/postgresql/$pgmajor/extension/pgautofailover.control" ] || need+=("postgresql-$pgmajor-auto-failover")
fi
command -v pgbackrest >/dev/null 2>&1 || need+=(pgbackrest)
command -v pg_autoctl >/dev/null 2>&1 || need+=(pg-auto-failover-cli)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing Debian packages: ${need[*]} — install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
