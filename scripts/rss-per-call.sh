#!/usr/bin/env bash
# RSS per live call: start a server, note its RSS, place N simulated calls
# at once (real time, speech WAV), sample RSS while all are live; and
# /healthz latency (curl's time_total) under that load.
# usage: scripts/rss-per-call.sh [calls]   (needs target/release/hotline)
set -euo pipefail
n=${1:-100}
port=18190
bin=target/release/hotline
PORT=$port HOTLINE_BIND=127.0.0.1 RUST_LOG=warn $bin 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null' EXIT
until curl -sf 127.0.0.1:$port/readyz >/dev/null; do sleep 0.05; done
rss() { awk '/VmRSS/ {print $2}' /proc/$server/status; }
base=$(rss)
$bin call --url http://127.0.0.1:$port --wav tests/data/fox-16k.wav --calls "$n" --idle-secs 3 > /tmp/rss-calls.out &
client=$!
peak=$base
for _ in $(seq 1 24); do
  sleep 0.25
  live=$(curl -s 127.0.0.1:$port/readyz | sed -E 's/.*"live_calls":([0-9]+).*/\1/')
  now=$(rss)
  if [ "$live" -eq "$n" ] && [ "$now" -gt "$peak" ]; then peak=$now; fi
done
health=$(for _ in $(seq 1 100); do curl -s -o /dev/null -w '%{time_total}\n' 127.0.0.1:$port/healthz; sleep 0.01; done | sort -n)
wait $client
tail -1 /tmp/rss-calls.out
echo "RSS idle ${base} KiB; with $n live calls ${peak} KiB; per call $(( (peak - base) / n )) KiB"
echo "$health" | awk '{v[NR]=$1} END {printf "/healthz under load (n=%d, sampled while the calls are live): p50 %.2f ms, p99 %.2f ms\n", NR, v[int(NR*0.5)]*1000, v[int(NR*0.99)]*1000}'
