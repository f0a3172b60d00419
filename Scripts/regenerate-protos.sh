#!/usr/bin/env bash
# Regenerates Sources/ONNXGraph/Generated/onnx.pb.swift from Protos/onnx.proto.
#
# Needs `protoc` (Debian: `apt-get install -y protobuf-compiler`) and a Swift toolchain.
# protoc-gen-swift is built from swift-protobuf at the same version the package depends on
# (Package.resolved), so the generated code matches the SwiftProtobuf runtime it links against.
#
# Environment:
#   SWIFT_PROTOBUF_VERSION  tag to build the plugin from (default 1.39.0)
#   SWIFT_PROTOBUF_URL      git URL (default https://github.com/apple/swift-protobuf.git)
#   PROTOC_GEN_SWIFT_CACHE  where the checkout and its build are kept between runs
#                           (default ${TMPDIR:-/tmp}/camkit-protoc-gen-swift-<version>)
#   PROTOC                  protoc binary (default: protoc on PATH)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${SWIFT_PROTOBUF_VERSION:-1.39.0}"
URL="${SWIFT_PROTOBUF_URL:-https://github.com/apple/swift-protobuf.git}"
CACHE="${PROTOC_GEN_SWIFT_CACHE:-${TMPDIR:-/tmp}/camkit-protoc-gen-swift-${VERSION}}"
PROTOC="${PROTOC:-protoc}"

command -v "$PROTOC" >/dev/null || {
    echo "error: protoc not found; install it with 'apt-get install -y protobuf-compiler' (or 'brew install protobuf')" >&2
    exit 1
}

if [ ! -d "$CACHE/src/.git" ]; then
    echo "Cloning swift-protobuf $VERSION into $CACHE/src"
    rm -rf "$CACHE/src"
    mkdir -p "$CACHE"
    git -c advice.detachedHead=false clone --quiet --depth 1 --branch "$VERSION" "$URL" "$CACHE/src"
fi

echo "Building protoc-gen-swift (release)"
swift build -c release --package-path "$CACHE/src" --scratch-path "$CACHE/build" --product protoc-gen-swift
PLUGIN="$(swift build -c release --package-path "$CACHE/src" --scratch-path "$CACHE/build" --show-bin-path)/protoc-gen-swift"

OUT="$ROOT/Sources/ONNXGraph/Generated"
mkdir -p "$OUT"
echo "Running $("$PROTOC" --version) with protoc-gen-swift $VERSION"
"$PROTOC" \
    --plugin=protoc-gen-swift="$PLUGIN" \
    --proto_path="$ROOT/Protos" \
    --swift_out="$OUT" \
    --swift_opt=Visibility=Internal \
    --swift_opt=FileNaming=DropPath \
    "$ROOT/Protos/onnx.proto"
echo "Wrote $OUT/onnx.pb.swift"
