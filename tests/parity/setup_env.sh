#!/usr/bin/env bash
# Recreates the Python reference env used to generate the parity fixtures: Debian 12's python3-torch 1.13 (CPU)
# plus a --system-site-packages venv at <repo>/.venv-ref with the pinned transformers from requirements.txt.
# Reference tooling only; building and testing lens never needs Python. Needs apt (root) only if packages are missing.
# Usage: tests/parity/setup_env.sh && .venv-ref/bin/python tests/parity/make_fixtures.py
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-ref"
apt_pkgs=(python3 python3-venv python3-pip python3-torch python3-numpy python3-sentencepiece)

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
"$venv/bin/python" -c 'import torch, transformers; transformers.GPT2LMHeadModel; transformers.LlamaForCausalLM
print("ok: torch", torch.__version__, "transformers", transformers.__version__)'
