#!/bin/sh
# Builds tests/browser/make_pages (the writer + synthetic data) without the main CMake build:
# embeds the template with cmake/embed.cmake in script mode, then compiles with g++.
# Usage: tests/browser/build.sh OUT_DIR   (run from anywhere; writes OUT_DIR/make_pages)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
mkdir -p "$out"
view="$root/src/output/view"
# Same list as the main CMakeLists (docs/view.md).
files="$view/index.html;$view/style.css;$view/common.js;$view/lens_view.js;$view/head_view.js"
files="$files;$view/model_view.js;$view/neuron_view.js;$view/sinks_view.js;$view/main.js"
cmake -DOUTPUT="$out/view_assets.cpp" -DVAR=kViewAssets "-DFILES=$files" -P "$root/cmake/embed.cmake"
${CXX:-g++} -std=c++17 -O2 -Wall -Wextra -I"$root/include" -I"$root/src" \
  "$root/src/output/view.cpp" "$out/view_assets.cpp" "$root/tests/browser/make_pages.cpp" -o "$out/make_pages"
