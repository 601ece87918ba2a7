# agent: runs in edge's network namespace (network_mode: service:edge) and checks edge
# over 127.0.0.1 every 2 s; says so every 30 checks, and at once when a check fails.
# (No -T: this busybox's wget segfaults with a timeout option.)
ROLE=agent
. /apps/lib.sh
n=0
while :; do
  if out=$(wget -q -O /dev/null "http://127.0.0.1:$EDGE_PORT/" 2>&1); then
    n=$((n + 1))
    [ $((n % 30)) -eq 1 ] && echo "agent: edge answered ($n checks)"
  else
    echo "agent: edge check failed: $out"
  fi
  i=0
  while [ $i -lt 10 ]; do
    say
    pause 0.2
    i=$((i + 1))
  done
done
