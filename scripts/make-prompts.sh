#!/usr/bin/env bash
# Regenerates the guest's spoken prompts (8 kHz μ-law, raw) with espeak-ng
# and sox. Not part of the build: the outputs are committed.
#   apt-get install espeak-ng sox
set -euo pipefail
cd "$(dirname "$0")/../guest/agent/assets"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
say() { espeak-ng -v en-us -s 165 -w "$tmp/$1.wav" "$2"; sox "$tmp/$1.wav" -r 8000 -c 1 -e mu-law -t raw "$1.ulaw"; }
say filler "One moment."
say apology "Sorry, I had a problem there. Could you say that again?"
