#!/usr/bin/env bash
# Builds a decoder with libFuzzer + AddressSanitizer and fuzzes it.
#   fuzz/run.sh [seconds] [codec|record|stored|admin]   (default 60 s, codec: the MQTT decoder; record:
#       the storage RecordReader; stored: the broker's session, delivery, message, bridge and will
#       records; admin: the admin listener's request targets, query parameters and routing.
#       Each target's corpus grows in fuzz/corpus (codec) or fuzz/corpus-<target>; crashes land in fuzz/)
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
stored)
    # The records need MQTTCodec and Storage's record codec under their real module names.
    mkdir -p corpus-stored
    swiftc "${flags[@]}" -module-name MQTTCodec -emit-module -emit-module-path "$out/MQTTCodec.swiftmodule" \
        -emit-library -static -o "$out/libMQTTCodec.a" ../Sources/MQTTCodec/*/*.swift
    swiftc "${flags[@]}" -module-name Storage -emit-module -emit-module-path "$out/Storage.swiftmodule" \
        -emit-library -static -o "$out/libStorage.a" \
        ../Sources/Storage/StorageError.swift ../Sources/Storage/RecordReader.swift \
        ../Sources/Storage/RecordWriter.swift ../Sources/Storage/RecordKey.swift ../Sources/Storage/Keyspace.swift
    swiftc "${flags[@]}" -I "$out" -L "$out" -lMQTTCodec -lStorage -module-name StoredRecordFuzz \
        ../Sources/Broker/Persistence/Records.swift StoredRecordFuzz.swift -o "$out/stored-fuzz"
    "$out/stored-fuzz" -max_total_time="$seconds" -max_len=4096 corpus-stored
    ;;
admin)
    # The admin listener's own parsing (libmicrohttpd parses HTTP): no C library needed.
    mkdir -p corpus-admin
    swiftc "${flags[@]}" \
        -module-name AdminTargetFuzzed -emit-module -emit-module-path "$out/AdminTargetFuzzed.swiftmodule" \
        -emit-library -static -o "$out/libAdminTargetFuzzed.a" \
        ../Sources/Admin/Routing/RequestTarget.swift ../Sources/Admin/Routing/Router.swift
    swiftc "${flags[@]}" -I "$out" -L "$out" -lAdminTargetFuzzed \
        AdminTargetFuzz.swift -o "$out/admin-fuzz"
    "$out/admin-fuzz" -max_total_time="$seconds" -max_len=1024 corpus-admin
    ;;
*)
    echo "usage: fuzz/run.sh [seconds] [codec|record|stored|admin]" >&2
    exit 2
    ;;
esac
