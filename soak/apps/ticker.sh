# ticker: a clock under `restart: unless-stopped`, printing a tick every 5 s.
ROLE=ticker
. /apps/lib.sh
n=0
while :; do
  echo "ticker: tick $n"
  n=$((n + 1))
  i=0
  while [ $i -lt 25 ]; do
    say
    pause 0.2
    i=$((i + 1))
  done
done
