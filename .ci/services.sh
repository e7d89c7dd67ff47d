#!/usr/bin/env bash
# CI services for the engine's tests: PostgreSQL from Debian's packages, running, with a database
# and a user for the two-worker test (tests/test_postgres.py). Idempotent and quiet: safe to rerun.
#
# tests/test_postgres.py starts its own throwaway cluster with initdb/pg_ctl (so it needs only the
# binaries); the system cluster started here is for people who point
# CHROMBENCH_PG_URL=postgresql://chrombench:chrombench@127.0.0.1:5432/chrombench at it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq postgresql >/dev/null
fi

# Start the packaged cluster (Debian's pg_ctlcluster; creates one when the package made none).
version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^${version} main$"; then
  $SUDO pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  $SUDO pg_ctlcluster "$version" main start
fi

# User and database (no error if they exist).
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
as_pg psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='chrombench'" | grep -q 1 \
  || as_pg psql -qc "CREATE ROLE chrombench LOGIN PASSWORD 'chrombench'"
as_pg psql -qtAc "SELECT 1 FROM pg_database WHERE datname='chrombench'" | grep -q 1 \
  || as_pg createdb -O chrombench chrombench
echo "PostgreSQL $version: postgresql://chrombench:chrombench@127.0.0.1:5432/chrombench"
