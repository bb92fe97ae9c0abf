#!/usr/bin/env python3
"""Reference for bench/bench_tokenizer.cpp: the same lines encoded with HF `tokenizers`, one call per line on one
thread (RAYON_NUM_THREADS=1), printing MB/s, tokens/s and the same FNV-1a checksum of all ids, so that the two
programs' figures (and ids) can be compared in one run. Python's per-call overhead is part of the figure; the
encode_batch line shows tokenizers' batch path on one thread as well.

Usage: bench_tokenizer_ref.py [--model DIR] [--runs N] [FILE...]
  (python3 -m venv .venv-tok && .venv-tok/bin/pip install tokenizers)
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its thread pool
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("LENS_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
CORPUS = [  # the same list as bench_tokenizer.cpp
    "corpus/tinyshakespeare/input.txt",
    "corpus/tinystories/tinystories_train_first2MiB.complete.txt",
    "corpus/wikitext-2/valid.txt",
    "corpus/wikitext-2/test.txt",
    "corpus/wikitext-2-raw/wiki.test.raw",
]


def load(model_dir):
    if os.path.exists(os.path.join(model_dir, "tokenizer.json")):
        return Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    # GPT2TokenizerFast as transformers' converter builds it from vocab.json + merges.txt
    tok = Tokenizer(models.BPE.from_file(os.path.join(model_dir, "vocab.json"), os.path.join(model_dir, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tok


def fnv1a(ids_iter):
    h = 1469598103934665603
    for i in ids_iter:
        h = ((h ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(SHARED, "models", "gpt2-tokenizer"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    files = args.files or [os.path.join(SHARED, f) for f in CORPUS]
    data = b"".join(open(f, "rb").read() for f in files)
    text = data.decode("utf-8", errors="replace")
    lines = [s + "\n" for s in text.split("\n")]  # each line keeps its "\n", as in bench_tokenizer.cpp
    lines[-1] = lines[-1][:-1]  # the last part had none
    if not lines[-1]:
        lines.pop()
    assert "".join(lines) == text
    t = time.perf_counter()
    tok = load(args.model)
    print(f"model {args.model} (load {time.perf_counter() - t:.3f} s), {len(files)} files, "
          f"{len(data) / 1e6:.2f} MB, {len(lines)} lines, tokenizers {tokenizers.__version__}", file=sys.stderr)

    times = []
    for r in range(args.runs):
        t0 = time.perf_counter()
        all_ids = [tok.encode(line, add_special_tokens=False).ids for line in lines]
        times.append(time.perf_counter() - t0)
        print(f"run {r + 1}: {times[-1]:.3f} s", file=sys.stderr)
    n_tokens = sum(len(x) for x in all_ids)
    checksum = fnv1a(i for ids in all_ids for i in ids)
    med = statistics.median(times)
    mb = len(data) / 1e6
    print(f"HF encode  : {mb:.2f} MB, {n_tokens} tokens, median of {args.runs} runs {med:.3f} s: "
          f"{mb / med:.2f} MB/s, {n_tokens / med:.0f} tokens/s (first run {times[0]:.3f} s); checksum {checksum:016x}")
    t0 = time.perf_counter()
    batch = tok.encode_batch(lines, add_special_tokens=False)
    bt = time.perf_counter() - t0
    print(f"HF batch   : encode_batch on 1 thread {bt:.3f} s: {mb / bt:.2f} MB/s, "
          f"{sum(len(e.ids) for e in batch) / bt:.0f} tokens/s")


if __name__ == "__main__":
    main()
