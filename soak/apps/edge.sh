# edge: a static HTTP server on the host network (busybox httpd), the service whose
# network namespace agent shares (network_mode: service:edge). A restart clears /ctl/sick
# (its healthcheck fails while that file exists); /ctl/slow delays its start.
ROLE=edge
. /apps/lib.sh
rm -f /ctl/sick
if [ -f /ctl/slow ]; then
  n=$(cat /ctl/slow); rm -f /ctl/slow
  echo "edge: warming up for $n s"
  pause "$n"
fi
mkdir -p /tmp/www && echo ok > /tmp/www/index.html
httpd -p "127.0.0.1:$EDGE_PORT" -h /tmp/www
echo "edge: serving on 127.0.0.1:$EDGE_PORT"
while :; do
  say
  pause 0.2
done
