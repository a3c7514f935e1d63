#!/usr/bin/env bash
# Configures and builds Pieces into build/ (Release with debug info, warnings on).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
