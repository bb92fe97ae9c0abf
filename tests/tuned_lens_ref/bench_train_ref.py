# Training throughput of the tuned-lens package on this CPU: runs the package's Train.execute on stories260K with
# the reference config of train_ref.py (seq_len 256, 8 chunks per micro-batch, 4096 tokens per step, SGD defaults,
# bf16 autocast as the package does; --no-autocast for fp32) for a few steps and prints training tokens/s, timed
# from the start of step 2 to the end (model load, tokenisation and step 1 excluded). Lens saved to a temp dir.
# Usage: .venv-tl/bin/python tests/tuned_lens_ref/bench_train_ref.py [--steps 10] [--threads 2] [--no-autocast]

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from train_ref import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="tuned-lens package training tokens/s on stories260K")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--tokens-per-step", type=int, default=common.TOKENS_PER_STEP)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--no-autocast", action="store_true")
    args = ap.parse_args()
    if args.steps < 2:
        sys.exit("error: --steps must be >= 2 (step 1 is warm-up)")
    out = tempfile.mkdtemp(prefix="tl-bench-")
    try:
        secs, _ = train(os.path.join(out, "lens"), not args.no_autocast, args.steps, args.tokens_per_step,
                        common.BATCH_SIZE, args.threads)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    tokens = (args.steps - 1) * args.tokens_per_step
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"tuned-lens train: {tokens / secs:.0f} tokens/s ({tokens} tokens in {secs:.2f} s, "
          f"{args.threads} threads, autocast_bf16={not args.no_autocast}, seq_len {common.SEQ_LEN}, "
          f"batch {common.BATCH_SIZE}, load avg {load:.1f})")


if __name__ == "__main__":
    main()
