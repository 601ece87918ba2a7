#!/bin/bash
# What PostgreSQL 15, psql and psycopg2 print when things go wrong, live: run as
# `bash postgres_errors.sh` in cc-pg15. Each case prints `=== CASE NAME` and what the
# client printed; the server's own log follows under `=== SERVER LOG`.
label() { echo "=== CASE $1"; }
bin=/usr/lib/postgresql/15/bin
q() { PGCONNECT_TIMEOUT=3 $bin/psql -X -q -h /tmp -U postgres "$@" 2>&1; }
su postgres -c "$bin/initdb -D /tmp/pg -A trust -U postgres" >/dev/null 2>&1
sed -i '1i local all app scram-sha-256' /tmp/pg/pg_hba.conf
sed -i 's/^host /#host /' /tmp/pg/pg_hba.conf
su postgres -c "$bin/pg_ctl -D /tmp/pg -l /tmp/pg.log -w start -o \"-k /tmp -c listen_addresses=127.0.0.1 -c max_connections=6 -c superuser_reserved_connections=0 -c log_min_duration_statement=200\"" >/dev/null
q -c "create role app login password 'right'; create table t(id int primary key, v int); insert into t values (1, 0), (2, 0); create role viewer login"
label pg-database-missing; q -d ghost -c 'select 1'
label pg-role-missing; PGCONNECT_TIMEOUT=3 $bin/psql -X -h /tmp -U reporting -d postgres -c 'select 1' 2>&1
label pg-password-auth; PGPASSWORD=wrong $bin/psql -X -h /tmp -U app -d postgres -c 'select 1' 2>&1
label pg-hba-reject; $bin/psql -X -h 127.0.0.1 -U postgres -d postgres -c 'select 1' 2>&1
label pg-table-missing; q -c 'select * from orders'
label pg-column-missing; q -c 'select total from t'
label pg-unique-violation; q -c 'insert into t values (1, 0)'
label pg-syntax-error; q -c 'selec 1'
label pg-statement-timeout; q -c "set statement_timeout = 100; select pg_sleep(2)"
label pg-permission-denied; $bin/psql -X -h /tmp -U viewer -d postgres -c 'select * from t' 2>&1
label pg-slow-statement; q -c 'select pg_sleep(0.3)' >/dev/null; echo "(in the server log)"
label pg-deadlock
q -c "begin; update t set v = 1 where id = 1; select pg_sleep(1); update t set v = 1 where id = 2; commit" &
q -c "begin; update t set v = 2 where id = 2; select pg_sleep(1); update t set v = 2 where id = 1; commit" &
wait
label pg-too-many-connections
for i in 1 2 3 4 5 6; do q -c 'select pg_sleep(3)' >/dev/null & done
sleep 1; q -c 'select 1'; wait
label psycopg2-database-missing
python3 -c "import psycopg2; psycopg2.connect('host=/tmp user=postgres dbname=ghost')" 2>&1
label psycopg2-unique-violation
python3 - 2>&1 <<'PY'
import psycopg2
conn = psycopg2.connect("host=/tmp user=postgres dbname=postgres")
conn.cursor().execute("insert into t values (2, 0)")
PY
label psycopg2-refused
python3 -c "import psycopg2; psycopg2.connect('host=127.0.0.1 port=5999 user=postgres dbname=postgres connect_timeout=3')" 2>&1
label pg-client-gone  # a client killed in an open transaction: the server's log says so
(echo "begin;"; sleep 3) | $bin/psql -X -q -h /tmp -U postgres >/dev/null 2>&1 &
sleep 1; kill -9 $!; wait
su postgres -c "$bin/pg_ctl -D /tmp/pg -m fast -w stop" >/dev/null
label pg-not-running; q -c 'select 1'
echo "=== SERVER LOG"
cat /tmp/pg.log
