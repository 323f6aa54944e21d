#!/usr/bin/env bash
# Builds the codec with libFuzzer + AddressSanitizer and fuzzes the decoder.
#   fuzz/run.sh [seconds]      (default 60; the corpus grows in fuzz/corpus, crashes land in fuzz/)
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
out=../.build-fuzz
mkdir -p "$out" corpus
swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name MQTTCodecFuzzed -emit-module -emit-module-path "$out/MQTTCodecFuzzed.swiftmodule" \
    -emit-library -static -o "$out/libMQTTCodecFuzzed.a" ../Sources/MQTTCodec/*/*.swift
swiftc -sanitize=fuzzer,address -parse-as-library -O -g -I "$out" -L "$out" -lMQTTCodecFuzzed \
    CodecFuzz.swift -o "$out/codec-fuzz"
"$out/codec-fuzz" -max_total_time="$seconds" -max_len=4096 corpus
