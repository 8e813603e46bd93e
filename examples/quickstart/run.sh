#!/usr/bin/env bash
# Quickstart: marathon-lb end to end on loopback, no cluster needed.
#
#   simulator (Marathon API, examples/quickstart/apps.json)
#     → marathon-lb (one-shot, config validated by haproxy -c)
#     → a real HAProxy on 127.0.0.1:18080
#     → three tiny HTTP backends on 127.0.0.1:18001-18003
#
# Then requests with different Host headers show vhost routing. Everything
# is stopped on exit. Installs HAProxy with apt-get if it is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work=/tmp/mlb-quickstart
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if ! command -v haproxy >/dev/null; then
  echo "== installing haproxy"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq haproxy
fi
rustup target add wasm32-wasip2 >/dev/null 2>&1 || echo "(wasm32-wasip2 unavailable: the prebuilt default plugin is embedded)"

echo "== building"
(cd "$root" && cargo build --release --locked -p marathon-lb -p marathon-sim)
bin="$root/target/release"

rm -rf "$work" && mkdir -p "$work"
echo "== backends on 127.0.0.1:18001-18003"
for i in 1 2 3; do
  mkdir -p "$work/backend$i" && echo "hello from backend $i" > "$work/backend$i/index.html"
  python3 -m http.server "1800$i" --bind 127.0.0.1 --directory "$work/backend$i" >/dev/null 2>&1 &
  pids+=($!)
done

echo "== Marathon simulator"
"$bin/marathon-sim" --listen 127.0.0.1:0 --apps "$here/apps.json" --port-file "$work/marathon.url" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/marathon.url" ] && break; sleep 0.1; done
marathon="$(cat "$work/marathon.url")"
echo "   $marathon"

echo "== marathon-lb (one-shot, --group external)"
"$bin/marathon-lb" --marathon "$marathon" --group external \
  --haproxy-config "$work/haproxy.cfg" --templates-dir "$here/templates" \
  --command true --syslog-socket /dev/null --log-level WARNING
echo "   wrote $work/haproxy.cfg ($(grep -c '^backend' "$work/haproxy.cfg") backends)"

echo "== HAProxy"
haproxy -W -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:19090/_haproxy_health_check && break; sleep 0.1; done

echo "== requests"
for host in web.example.test web.example.test api.example.test staging.example.test; do
  out="$(curl -s -H "Host: $host" -w '|%{http_code}' http://127.0.0.1:18080/ || true)"
  body="$(printf '%s' "${out%|*}" | head -n1 | cut -c1-40)"
  printf '   Host: %-22s -> HTTP %s  %s\n' "$host" "${out##*|}" "$body"
done
echo "   (staging.example.test is in group 'internal', not served by this --group external instance)"
