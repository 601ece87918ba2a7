#!/bin/bash
# What the shells and the dynamic loader print when a command cannot start, live: run as
# `bash shell_errors.sh` in cc-pg15 (Debian: bash, dash, the loader, psql). Each case
# prints `=== CASE NAME` and then what the shell or the program printed.
label() { echo "=== CASE $1"; }
label bash-command-not-found; bash -c 'migrate-db --up' 2>&1
label dash-not-found; sh -c 'gunicorn app:app' 2>&1
printf '#!/usr/bin/python4\nprint(1)\n' > /tmp/start.py; chmod +x /tmp/start.py
label bash-bad-interpreter; bash -c /tmp/start.py 2>&1
# an x86-64 ELF header cut short: the same bytes every run (random bytes could hold a
# newline before the first NUL, and bash would run them as a script and print them)
printf '\177ELF\2\1\1\0\0\0\0\0\0\0\0\0\2\0' > /tmp/server; chmod +x /tmp/server
label bash-exec-format; bash -c /tmp/server 2>&1
label bash-permission-denied; bash -c /etc/hostname 2>&1
label dash-permission-denied; sh -c /etc/hostname 2>&1
printf 'echo ok\r\n' > /tmp/crlf.sh; printf '#!/bin/sh\r\necho ok\r\n' > /tmp/crlf2.sh; chmod +x /tmp/crlf2.sh
label crlf-interpreter; bash -c /tmp/crlf2.sh 2>&1
rm -f /usr/lib/x86_64-linux-gnu/libpq.so.5*
label loader-missing-library; /usr/lib/postgresql/15/bin/psql --version 2>&1
exit 0
