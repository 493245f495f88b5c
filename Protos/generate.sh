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
# What the generated code was made from: the .proto files and this script (its options shape
# the code too). A test compares the stamp with them, so a change to either without
# regenerating fails the suite.
(cd "$here" && sha256sum *.proto generate.sh) > "$out/protos.sha256"
echo "Generated: $(ls "$out")" >&2

# The same protocol in C (protobuf-c), for peers/c-verifier: protoc-c comes from Debian's
# protobuf-c-compiler (only this script needs it; the C node builds against libprotobuf-c).
c_out="$root/peers/c-verifier/generated"
if command -v protoc-c >/dev/null 2>&1; then
    mkdir -p "$c_out"
    rm -f "$c_out"/*.pb-c.c "$c_out"/*.pb-c.h
    # protoc-c 1.4 does not support proto3 `optional`: it gets the files without the keyword.
    # The encoding is the same (a field is written when set); only the C side cannot tell an
    # empty value from an absent one, which it never needs to (it leaves unset what it lacks).
    plain="$(mktemp -d)"
    for file in "$here"/*.proto; do sed -E 's/^([[:space:]]*)optional /\1/' "$file" > "$plain/$(basename "$file")"; done
    protoc-c --c_out="$c_out" -I "$plain" "$plain"/*.proto
    rm -rf "$plain"
    (cd "$here" && sha256sum *.proto generate.sh) > "$c_out/protos.sha256"
    echo "Generated: $(ls "$c_out")" >&2
else
    echo "protoc-c is missing (apt-get install protobuf-c-compiler): the C code in $c_out was not regenerated" >&2
fi
