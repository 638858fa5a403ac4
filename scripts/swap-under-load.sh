#!/usr/bin/env bash
# The swap's effect on frame timing: N live simulated calls (real time,
# speech WAV); halfway through, a new guest version is pushed and every
# call migrates. Reports the longest time any single inbound event took on
# the server (receipt to effects flushed, migration included), with and
# without a swap.
# usage: scripts/swap-under-load.sh [calls]   (after `cargo build --release`)
set -euo pipefail
n=${1:-200}
bin=target/release/hotline
v2=$(ls -t target/release/build/hotline-*/out/guest-target/wasm32-wasip2/release/hotline_guest_v2.wasm | head -1)
token=swap-measurement-token-0123
run() {
  local swap=$1 port=$2 log=/tmp/hotline-swap-$1.log
  PORT=$port HOTLINE_BIND=127.0.0.1 HOTLINE_LOG_FORMAT=json HOTLINE_ADMIN_TOKEN=$token HOTLINE_CACHE_DIR=off \
    $bin 2>"$log" &
  local server=$!
  until curl -sf 127.0.0.1:$port/readyz >/dev/null; do sleep 0.05; done
  $bin call --url http://127.0.0.1:$port --wav tests/data/fox-16k.wav --calls "$n" --idle-secs 2 > /tmp/hotline-swap-calls.out &
  local client=$!
  sleep 3
  if [ "$swap" = swap ]; then
    $bin guest push "$v2" --url http://127.0.0.1:$port --token $token
  fi
  wait $client
  kill $server; wait $server 2>/dev/null || true
  tail -1 /tmp/hotline-swap-calls.out
  python3 - "$log" "$swap" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
closed = [e["max_event_us"] for e in events if e.get("event") == "ws_closed"]
migrated = sum(1 for e in events if e.get("event") == "migrated")
closed.sort()
print(f"{sys.argv[2]}: {len(closed)} calls, {migrated} migrated; per-call worst event: "
      f"median {closed[len(closed)//2]/1000:.2f} ms, p99 {closed[int(len(closed)*0.99)-1]/1000:.2f} ms, max {closed[-1]/1000:.2f} ms")
PY
}
run noswap 18290
run swap 18291
