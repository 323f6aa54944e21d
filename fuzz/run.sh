#!/usr/bin/env bash
# Builds a decoder with libFuzzer + AddressSanitizer and fuzzes it.
#   fuzz/run.sh [seconds] [codec|record]   (default 60 s, codec: the MQTT decoder; record: the
#                                           storage RecordReader. Each target's corpus grows in
#                                           fuzz/corpus (codec) or fuzz/corpus-record; crashes land in fuzz/)
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
target="${2:-codec}"
out=../.build-fuzz
mkdir -p "$out"
flags=(-sanitize=fuzzer,address -parse-as-library -O -g)
case "$target" in
codec)
    mkdir -p corpus
    swiftc "${flags[@]}" \
        -module-name MQTTCodecFuzzed -emit-module -emit-module-path "$out/MQTTCodecFuzzed.swiftmodule" \
        -emit-library -static -o "$out/libMQTTCodecFuzzed.a" ../Sources/MQTTCodec/*/*.swift
    swiftc "${flags[@]}" -I "$out" -L "$out" -lMQTTCodecFuzzed \
        CodecFuzz.swift -o "$out/codec-fuzz"
    "$out/codec-fuzz" -max_total_time="$seconds" -max_len=4096 corpus
    ;;
record)
    # Only the files without the CRocksDB import: the record codec and its error type.
    mkdir -p corpus-record
    swiftc "${flags[@]}" \
        -module-name StorageRecordFuzzed -emit-module -emit-module-path "$out/StorageRecordFuzzed.swiftmodule" \
        -emit-library -static -o "$out/libStorageRecordFuzzed.a" \
        ../Sources/Storage/StorageError.swift ../Sources/Storage/RecordReader.swift \
        ../Sources/Storage/RecordWriter.swift ../Sources/Storage/RecordKey.swift
    swiftc "${flags[@]}" -I "$out" -L "$out" -lStorageRecordFuzzed \
        RecordFuzz.swift -o "$out/record-fuzz"
    "$out/record-fuzz" -max_total_time="$seconds" -max_len=4096 corpus-record
    ;;
*)
    echo "usage: fuzz/run.sh [seconds] [codec|record]" >&2
    exit 2
    ;;
esac
