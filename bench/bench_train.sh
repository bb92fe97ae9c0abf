#!/usr/bin/env bash
# Training throughput of `lens train` (tokens/second through model + translators, optimizer included;
# model loading and tokenization excluded) on stories260K with TinyStories, for a few batch sizes.
# Not part of the test run. Usage: bench/bench_train.sh [build dir] [threads]
#
# Python comparison: if tests/tuned_lens_ref/bench_train.sh exists (the tuned-lens package on the
# same model and data, from the reference helper), it is run with the same settings and its output
# printed after ours; it should print a line "tokens/s: N".
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
threads="${2:-$(nproc)}"
shared="${LENS_SHARED_DIR:-$here/../shared}"
model="$shared/models/stories260K"
corpus="$shared/corpus/tinystories/tinystories_train_first2MiB.complete.txt"
steps=20 seq_len=256 tokens_per_step=8192
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -c 1000000 "$corpus" > "$tmp/train.txt"

echo "lens train: stories260K, $steps steps x $tokens_per_step tokens, seq_len $seq_len, $threads threads"
for bs in 1 8 32; do
  "$build/bin/lens" train -t "$threads" --model "$model" --data "$tmp/train.txt" -o "$tmp/lens_$bs" \
    --seq-len $seq_len --steps $steps --tokens-per-step $tokens_per_step --batch-size $bs 2> "$tmp/log_$bs" > /dev/null
  rate=$(sed -n 's/^trained .*(\([0-9]*\) tokens\/s)$/\1/p' "$tmp/log_$bs")
  echo "  batch size $bs: $rate tokens/s"
done

ref="$here/tests/tuned_lens_ref/bench_train.sh"
if [[ -x "$ref" ]]; then
  echo "tuned-lens (Python) reference:"
  "$ref" --model "$model" --data "$tmp/train.txt" --steps $steps --tokens-per-step $tokens_per_step \
    --seq-len $seq_len --threads "$threads"
else
  echo "(no $ref: Python reference timing not run)"
fi
