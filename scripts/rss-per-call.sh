#!/usr/bin/env bash
# RSS per live call: start a server, note its RSS, place N simulated calls
# at once (real time, speech WAV), sample RSS while all are live.
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
for _ in $(seq 1 40); do
  sleep 0.25
  live=$(curl -s 127.0.0.1:$port/readyz | sed -E 's/.*"live_calls":([0-9]+).*/\1/')
  now=$(rss)
  if [ "$live" -eq "$n" ] && [ "$now" -gt "$peak" ]; then peak=$now; fi
done
wait $client
tail -1 /tmp/rss-calls.out
echo "RSS idle ${base} KiB; with $n live calls ${peak} KiB; per call $(( (peak - base) / n )) KiB"
