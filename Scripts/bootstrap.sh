#!/usr/bin/env bash
# Installs the Debian packages CAMKit builds against, when they are missing. Idempotent.
# Used by the README's commands, by CI (.ci/run) and by developers.
set -euo pipefail
packages=(libopenblas-dev libdnnl-dev libpng-dev libjpeg62-turbo-dev libfreetype-dev fonts-dejavu-core pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "bootstrap: Swift 6 toolchain not found on PATH (https://swift.org/install)" >&2; exit 1; }
