#!/bin/sh
# Replays the fuzz seed corpus through the dispatcher (any compiler); the
# libFuzzer run itself is "make fuzz".
set -eu
dir=$(dirname "$0")
exec "${FUZZ_REPLAY:-./tests/fuzz_replay}" "$dir/../fuzz-corpus"
