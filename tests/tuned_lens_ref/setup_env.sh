#!/usr/bin/env bash
# Creates the tuned-lens reference env: Debian 12's python3-torch 1.13 (CPU) + a --system-site-packages venv at
# <repo>/.venv-tl with the pinned packages of requirements.txt and, without their dependencies, tuned-lens 0.2.0 and
# accelerate (requirements-nodeps.txt). Reference tooling only; building and testing lens never needs Python.
# Usage: tests/tuned_lens_ref/setup_env.sh && .venv-tl/bin/python tests/tuned_lens_ref/train_ref.py
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-tl"
apt_pkgs=(python3 python3-venv python3-pip python3-torch python3-sentencepiece)

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Debian's torch installs for /usr/bin/python3, not for a pyenv python3 that may be first on PATH.
[ -d "$venv" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install --disable-pip-version-check -q -r "$here/requirements.txt"
"$venv/bin/pip" install --disable-pip-version-check -q --no-deps -r "$here/requirements-nodeps.txt"
cd "$root"
"$venv/bin/python" - <<'PY'
import sys
sys.path.insert(0, "tests/tuned_lens_ref")
import common
common.install_import_stubs()
import torch, transformers, tuned_lens
from tuned_lens.scripts.train_loop import Train
from tuned_lens.scripts.eval_loop import Eval
from importlib.metadata import version
print("ok: torch", torch.__version__, "transformers", transformers.__version__, "tuned-lens", version("tuned-lens"))
PY
