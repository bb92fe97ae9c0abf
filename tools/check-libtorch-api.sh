#!/usr/bin/env bash
# Checks that every source compiles against another libtorch's headers (syntax and API only, no
# link), e.g. the libtorch 2.x inside a PyTorch wheel, without a CUDA toolkit on this machine:
#   tools/check-libtorch-api.sh /path/to/site-packages/torch/include [build-dir]
# The build dir provides the generated sources' headers (run a normal build first).
set -euo pipefail
inc=${1:?usage: $0 TORCH_INCLUDE_DIR [BUILD_DIR]}
build=${2:-build}
cd "$(dirname "$0")/.."
fail=0
for f in $(git ls-files 'src/*.cpp' 'tools/lens/*.cpp'); do
  if ! out=$(g++ -std=c++17 -fsyntax-only -D_GLIBCXX_USE_CXX11_ABI=0 -DLENS_SPM_SHIM_PATH='"unused"' \
      -Iinclude -Isrc -Itools/lens -I"$build/generated" -I"$inc" -I"$inc/torch/csrc/api/include" "$f" 2>&1); then
    echo "FAIL $f"; echo "$out" | grep -m5 error; fail=1
  fi
done
[ $fail -eq 0 ] && echo "all sources compile against $inc"
exit $fail
