#!/usr/bin/env bash
# Sets up (system packages), builds, and runs the demo on the bundled model and sample.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/bootstrap.sh
swift build -c release --product camkit
.build/release/camkit predict --input-tensor Samples/cat-and-coffee.input.npy
