#!/usr/bin/env bash
# C++ side of the reference recipe, checked in both directions with the tuned-lens package:
#  1. `lens train` trains stories260K's tuned lens from text on the recipe of stories260K-ref.json
#     (stories [0, 2048) packed as the package does, chunks in order, 50 steps x 4096 tokens as
#     2 x 8 chunks, package optimizer defaults, float32) into tests/fixtures/tuned-lens/stories260K-cpp/;
#  2. `lens eval` evaluates it (and the logit lens) on the 16 held-out chunks;
#  3. the package loads the same directory (eval_ref.py) -> tests/fixtures/tuned-lens/stories260K-cpp-py.json;
#  4. prints max |diff| of the two sides' metrics and KL vs the package-trained lens.
# The C++ model test TunedLensParity.CppLensSameInPackage then compares fixed-input outputs with the JSON.
# Usage: tests/tuned_lens_ref/crosscheck_cpp.sh [build dir] [python with tuned-lens, default .venv-tl/bin/python]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$here/build}"
py="${2:-$here/.venv-tl/bin/python}"
shared="${LENS_SHARED_DIR:-$here/../shared}"
cd "$here"
fix="tests/fixtures/tuned-lens"  # relative: the JSON records the lens dir as given
out="$fix/stories260K-cpp"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The reference split (common.load_stories): split on <|endoftext|>, strip, drop empty; lens's
# read_documents does the same, so writing the pieces back joined by the separator is lossless.
python3 - "$shared/corpus/tinystories/tinystories_train_first2MiB.complete.txt" "$tmp" <<'EOF'
import sys
sep = "<|endoftext|>"
stories = [s.strip() for s in open(sys.argv[1], encoding="utf-8").read().split(sep)]
stories = [s for s in stories if s]
assert len(stories) == 2316, len(stories)
open(sys.argv[2] + "/train.txt", "w", encoding="utf-8").write(sep.join(stories[:2048]))
open(sys.argv[2] + "/heldout.txt", "w", encoding="utf-8").write(sep.join(stories[2048:]))
EOF

export LENS_MODEL_PATH="$shared/models"
rm -rf "$out"
"$build/bin/lens" train -t 1 --model stories260K --data "$tmp/train.txt" -o "$out" --seq-len 256 --steps 50 \
  --tokens-per-step 4096 --batch-size 8 --no-shuffle
"$build/bin/lens" eval -q -t 1 --model stories260K --lens "$out" --data "$tmp/heldout.txt" --seq-len 256 \
  --max-sequences 16 --batch-size 8 -o "$tmp/cpp_eval.json"
"$py" tests/tuned_lens_ref/eval_ref.py "$out" --out "$fix/stories260K-cpp-py.json" \
  --ref "$fix/stories260K-ref.json"

python3 - "$tmp/cpp_eval.json" "$fix/stories260K-cpp-py.json" "$fix/stories260K-ref.json" <<'EOF'
import json, sys
cpp, py, ref = (json.load(open(f)) for f in sys.argv[1:])
worst = 0.0
for name in ("logit", "tuned"):
    for m in ("kl", "ce", "entropy"):
        ours = [x[m] for x in cpp["lenses"][name]][:5]
        theirs = py["heldout_metrics"][name][m]
        worst = max(worst, max(abs(a - b) / max(abs(b), 1e-3) for a, b in zip(ours, theirs)))
print(f"C++-trained lens, lens eval vs the package on the same files: max relative diff {worst:.2e} (KL/CE/H, logit+tuned)")
kl = [x["kl"] for x in cpp["lenses"]["tuned"]][:5]
for label, key in (("package bf16", "heldout_metrics"), ("package fp32", "heldout_metrics_tuned_trained_fp32")):
    r = ref[key]["tuned"]["kl"] if key == "heldout_metrics" else ref[key]["kl"]
    print(f"held-out KL, C++ / {label} - 1 per layer: " + " ".join(f"{a / b - 1:+.2%}" for a, b in zip(kl, r)))
print("held-out KL per layer, C++-trained: " + " ".join(f"{x:.4f}" for x in kl))
sys.exit(worst > 1e-3)
EOF
rm -rf "$out/checkpoints"
echo "wrote $out and $fix/stories260K-cpp-py.json; now run: lens_model_tests --gtest_filter='TunedLensParity.*'"
