# Shared by the busybox services of the soak stack (sourced, not run).
# say: print the files the fault injector left in /ctl (say-*.txt, in name order) on this
# service's own stdout, then remove them. The text goes through cat, never a command line.
say() {
  for f in /ctl/say-*.txt; do
    [ -f "$f" ] || continue
    cat "$f"
    rm -f "$f"
  done
}
# pause SECONDS: sleep without blocking the TERM trap (busybox sleep in the background)
pause() {
  sleep "$1" &
  wait $!
}
trap 'echo "$ROLE: shutting down"; exit 0' TERM
