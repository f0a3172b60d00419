#!/usr/bin/env bash
# Sets up (system packages), builds, and runs the demo: the bundled EfficientNet-Lite0 classifies
# the composite sample photo, then Grad-CAM shows where it sees the cat (285) and the espresso (967).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/bootstrap.sh
swift build -c release --product camkit
out="${CAMKIT_DEMO_OUTPUT:-demo-output}"
mkdir -p "$out"
.build/release/camkit Samples/cat-and-coffee.jpg --target-category 285 967 --save-path "$out"
echo "open $out/cat-and-coffee-gradcam-285.png and $out/cat-and-coffee-gradcam-967.png"
