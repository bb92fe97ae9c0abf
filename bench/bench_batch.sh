#!/usr/bin/env bash
# Prompts per second of `lens run --prompts` on N prompts (default 1000 TinyStories sentences) of a
# small model (default stories260K): one by one (--batch-size 1, still one process and one model
# load) against batched (--batch-size 16 and 64), plus one separate `lens run` process per prompt
# on the first 50 prompts for scale. Not part of the tests; prints a Markdown table.
#   bench/bench_batch.sh [LENS] [MODEL] [N] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LENS=${1:-$here/../build/bin/lens}
MODEL=${2:-$here/../../shared/models/stories260K}
N=${3:-1000}
THREADS=${4:-1}
CORPUS=${CORPUS:-$here/../../shared/corpus/tinystories/tinystories_train_first2MiB.complete.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# N sentences of 20..160 characters, one per line.
python3 - "$CORPUS" "$N" > "$work/prompts.txt" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text)]
sents = [s for s in sents if 20 < len(s) < 160 and "\n" not in s]
print("\n".join(sents[: int(sys.argv[2])]))
PY

now() { date +%s.%N; }
echo "model: $MODEL, $N prompts, --threads $THREADS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| mode | positions | wall s | prompts/s |"
echo "|---|---|---:|---:|"
for positions in all last; do
  for bs in 1 16 64; do
    t0=$(now)
    "$LENS" run -m "$MODEL" --prompts "$work/prompts.txt" --positions "$positions" --batch-size "$bs" \
      -t "$THREADS" -q -o "$work/out.jsonl"
    t1=$(now)
    python3 -c "import sys; w=$t1-$t0; print(f'| --batch-size $bs | $positions | {w:.2f} | {$N/w:.1f} |')"
  done
done
# One process per prompt (model load, tokenizer, JSON each time), on the first 50 prompts.
head -n 50 "$work/prompts.txt" > "$work/p50.txt"
t0=$(now)
while IFS= read -r p; do
  "$LENS" run -m "$MODEL" --prompt "$p" --positions last -t "$THREADS" -q -o "$work/one.json"
done < "$work/p50.txt"
t1=$(now)
python3 -c "w=$t1-$t0; print(f'| one process per prompt (50) | last | {w:.2f} | {50/w:.1f} |')"
