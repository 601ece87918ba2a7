#!/bin/sh
# fill.sh DIR START_MIB KIB_PER_S STOP_MIB: a volume filling at a steady rate, stopping
# (and holding) once it reaches STOP_MIB; prints its size every second.
dir=$1; start=$2; rate=$3; stop=$4
head -c $((start * 1048576)) /dev/zero > "$dir/base"
n=0
while :; do
  size=$(du -sk "$dir" | cut -f1)
  echo "$(date +%s) holds $((size / 1024)) MiB"
  if [ "$size" -lt $((stop * 1024)) ]; then
    head -c $((rate * 1024)) /dev/zero > "$dir/part.$n"
    n=$((n + 1))
  fi
  sleep 1
done
