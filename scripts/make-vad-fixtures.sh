#!/usr/bin/env bash
# Regenerates the voice-detection fixtures in guest/audio/testdata/ (8 kHz
# μ-law, raw, no header) with espeak-ng and sox. Not part of the build or
# the tests: the outputs are committed, and the tests mix them themselves
# (guest/audio/src/vad_cases.rs), so they need neither tool.
#   apt-get install espeak-ng sox     (espeak-ng 1.51, SoX 14.4.2 made them)
set -euo pipefail
cd "$(dirname "$0")/../guest/audio/testdata"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Speech: silence trimmed at both ends (the first sample is speech), peak
# normalized to -6 dBFS. The tests set the level relative to the noise.
say() { # name voice words
    espeak-ng -v "$2" -s 165 -w "$tmp/$1.wav" "$3"
    sox "$tmp/$1.wav" -r 8000 -c 1 "$tmp/$1-8k.wav" \
        silence 1 0.005 1% reverse silence 1 0.005 1% reverse gain -n -6
    sox "$tmp/$1-8k.wav" -e mu-law -t raw "speech-$1.ulaw"
}
say hello en-us "Hello? Is anyone there?"
say yes en-gb "Yes."
say order en-us+f3 "I'd like to check on my order, please."

# Noise, 5 s each, RMS -20 dBFS (the tests scale it). `-R` is SoX's fixed
# seed, so the same command makes the same noise. White, pink and brown
# pass through the telephone band (300-3400 Hz), as on a phone line; the
# mains hum does not (50 or 60 Hz with odd harmonics, what a ground loop
# adds near the handset).
noise() { # name synth-args [effects...]
    local name=$1 kind=$2; shift 2
    sox -R -n -r 8000 -c 1 -b 16 "$tmp/$name.wav" synth 5 "$kind" "$@"
    local rms; rms=$(sox "$tmp/$name.wav" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')
    local gain; gain=$(awk -v r="$rms" 'BEGIN { printf "%.3f", -20 - 20 * log(r) / log(10) }')
    sox "$tmp/$name.wav" -e mu-law -t raw "noise-$name.ulaw" gain "$gain"
}
noise white whitenoise sinc 300-3400
noise pink pinknoise sinc 300-3400
noise brown brownnoise sinc 300-3400
hum() { # name hz: fundamental, 3rd and 5th harmonics at -6 and -12 dB
    local f=$1
    sox -R -n -r 8000 -c 1 -b 16 "$tmp/h1.wav" synth 5 sine "$f"
    sox -R -n -r 8000 -c 1 -b 16 "$tmp/h3.wav" synth 5 sine "$((3 * f))" gain -6
    sox -R -n -r 8000 -c 1 -b 16 "$tmp/h5.wav" synth 5 sine "$((5 * f))" gain -12
    sox -m "$tmp/h1.wav" "$tmp/h3.wav" "$tmp/h5.wav" "$tmp/hum$f.wav"
    local rms; rms=$(sox "$tmp/hum$f.wav" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')
    local gain; gain=$(awk -v r="$rms" 'BEGIN { printf "%.3f", -20 - 20 * log(r) / log(10) }')
    sox "$tmp/hum$f.wav" -e mu-law -t raw "noise-hum$f.ulaw" gain "$gain"
}
hum 50
hum 60
ls -l
