#!/bin/sh
# ctest's hub.crosscheck: runs crosscheck.py with $LENS_PYTHON, else python3 on PATH; exit 77 (skip)
# when there is no python or it cannot import huggingface_hub.
py="${LENS_PYTHON:-python3}"
command -v "$py" >/dev/null 2>&1 || { echo "skip: $py not found"; exit 77; }
"$py" -c "import huggingface_hub" 2>/dev/null || { echo "skip: $py cannot import huggingface_hub (set LENS_PYTHON)"; exit 77; }
exec "$py" "$(dirname "$0")/crosscheck.py" --lens "$1" --models-dir "$2"
