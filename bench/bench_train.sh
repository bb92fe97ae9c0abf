#!/usr/bin/env bash
# Training throughput of `lens train` (tokens/second through model + translators, optimizer included;
# model loading and tokenization excluded) on stories260K with TinyStories, then, back to back on the
# same machine state, the tuned-lens package (tests/tuned_lens_ref/bench_train_ref.py) on the same
# config: seq_len 256, micro-batches of 8 sequences, 4096 tokens per step, package optimizer defaults.
# Then a few other batch sizes for lens alone. Not part of the test run. lens runs with its default
# --workers (one micro-batch per thread).
# Usage: bench/bench_train.sh [build dir] [thread counts, default "2"; e.g. "2 1"] [python with tuned-lens,
#        default .venv-tl/bin/python]
# Environment is passed through: OMP_WAIT_POLICY=PASSIVE (or GOMP_SPINCOUNT) changes both sides a lot
# when the cores are shared with other work (libgomp's spinning threads then wait on each other).
# The package is timed from step 2 (bench_train_ref.py); lens over all its steps (step 1 included,
# which slightly favours the package).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
thread_counts="${2:-2}"
py="${3:-$here/.venv-tl/bin/python}"
shared="${LENS_SHARED_DIR:-$here/../shared}"
model="$shared/models/stories260K"
corpus="$shared/corpus/tinystories/tinystories_train_first2MiB.complete.txt"
steps=10 seq_len=256 tokens_per_step=4096 batch=8
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -c 1000000 "$corpus" > "$tmp/train.txt"

threads=1
lens_rate() {  # batch size, steps, tokens per step -> tokens/s from lens's "trained ..." log line
  "$build/bin/lens" train -t "$threads" --model "$model" --data "$tmp/train.txt" -o "$(mktemp -d -p "$tmp")/lens" \
    --seq-len $seq_len --steps "$2" --tokens-per-step "$3" --batch-size "$1" --no-shuffle 2> "$tmp/log" > /dev/null
  sed -n 's/^trained .*(\([0-9]*\) tokens\/s)$/\1/p' "$tmp/log"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(unset)} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-(unset)}"
for threads in $thread_counts; do
  echo "same config, back to back: stories260K, seq_len $seq_len, batch $batch, $tokens_per_step tokens/step, $threads threads"
  echo "  lens train (float32):            $(lens_rate $batch $steps $tokens_per_step) tokens/s ($steps steps)"
  if [[ -x "$py" ]]; then
    echo "  tuned-lens package (bf16 autocast, its default):"
    "$py" "$here/tests/tuned_lens_ref/bench_train_ref.py" --steps $steps --threads "$threads" 2>/dev/null | sed 's/^/    /'
    echo "  tuned-lens package (--no-autocast, float32):"
    "$py" "$here/tests/tuned_lens_ref/bench_train_ref.py" --steps $steps --threads "$threads" --no-autocast 2>/dev/null |
      sed 's/^/    /'
    echo "  lens train again (float32):      $(lens_rate $batch $steps $tokens_per_step) tokens/s"
  else
    echo "  (no $py: package not timed; make it with tests/tuned_lens_ref/setup_env.sh)"
  fi
  echo "  load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
threads=1
echo "lens train, other batch sizes (20 steps x 8192 tokens, $threads thread):"
for bs in 1 32; do
  echo "  batch size $bs: $(lens_rate $bs 20 8192) tokens/s"
done
