#!/usr/bin/env bash
# Regenerates Sources/Wire/Generated/*.pb.swift from Protos/*.proto.
#
# Run this only when a .proto file changes, and commit the result: building
# protoc-gen-swift takes about ten minutes on two cores, so the plugin is built
# once per machine and cached under ~/.cache/selfimprove (override with
# SELFIMPROVE_CACHE).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cache="${SELFIMPROVE_CACHE:-$HOME/.cache/selfimprove}"
version="1.39.0"
plugin_dir="$cache/protoc-gen-swift-$version"
plugin="$plugin_dir/protoc-gen-swift"

if ! command -v protoc >/dev/null 2>&1; then
    echo "protoc is missing: run cluster/setup (it installs protobuf-compiler)" >&2
    exit 1
fi

if [ ! -x "$plugin" ]; then
    echo "Building protoc-gen-swift $version (once per machine, ~10 minutes)..." >&2
    src="$cache/swift-protobuf-src-$version"
    rm -rf "$src"
    mkdir -p "$cache"
    git clone --quiet --depth 1 --branch "$version" \
        https://github.com/apple/swift-protobuf.git "$src"
    (cd "$src" && swift build -c release --product protoc-gen-swift)
    mkdir -p "$plugin_dir"
    cp "$src/.build/release/protoc-gen-swift" "$plugin"
    rm -rf "$src"
fi

out="$root/Sources/Wire/Generated"
mkdir -p "$out"
rm -f "$out"/*.pb.swift
protoc \
    --plugin=protoc-gen-swift="$plugin" \
    --swift_out="$out" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=DropPath \
    -I "$here" \
    "$here"/*.proto
# What the generated code was made from: a test compares it with the .proto files, so a change
# to a .proto without regenerating fails the suite.
(cd "$here" && sha256sum *.proto) > "$out/protos.sha256"
echo "Generated: $(ls "$out")" >&2
