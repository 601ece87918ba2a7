#!/bin/bash
# Start PostgreSQL 15 on 127.0.0.1:$DB_PORT; on first start, create the cluster,
# the application role and its database. Runs as the image's postgres user.
set -euo pipefail
: "${DB_PORT:?}" "${DB_NAME:?}" "${DB_USER:?}" "${DB_PASSWORD:?}"
PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb --pgdata="$PGDATA" --username=postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --no-instructions >/dev/null
  postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE ROLE "$DB_USER" LOGIN PASSWORD '$DB_PASSWORD';
CREATE DATABASE "$DB_NAME" OWNER "$DB_USER";
SQL
  echo "initialised cluster with database $DB_NAME"
fi
exec postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -p "$DB_PORT" \
  -c unix_socket_directories=/tmp -c log_connections=off
