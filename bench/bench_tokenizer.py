#!/usr/bin/env python3
"""Tokenizer load and encode time: `lens tokenize --file` against Hugging Face `tokenizers`, same files, same lines.

For each tokenizer.json directory (default: the real files tests/tokenizers/fetch.sh puts in tests/tokenizers/files)
and each run, the two programs run one after the other, in alternating order, each as a fresh process:
  lens:  lens tokenize --model DIR --file CORPUS --no-special --timings   (one process; stdout discarded)
  HF:    python -c '... Tokenizer.from_file(DIR/tokenizer.json); tok.encode(line, add_special_tokens=False) ...'
         with RAYON_NUM_THREADS=1 (one thread, one encode call per line, as lens does)
and report their own timers: load_s (reading tokenizer.json into a ready tokenizer) and encode_s (the encode calls
only). The process CPU seconds (user + sys, from the OS) are printed too: on a machine shared with other work they
move less than wall time. Medians over the runs. Token counts are printed side by side; they can differ where
transformers rebuilds a pipeline around the file (GemmaTokenizer, GPT2Tokenizer for GPT-4o), which lens follows
and the raw `tokenizers` file does not. Not a test.

Usage: bench/bench_tokenizer.py [--lens build/bin/lens] [--python /work/venv5/bin/python] [--runs 3]
                                [--files DIR] [--corpus FILE] [NAME ...]     (NAMEs: subdirectories of --files)
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("LENS_SHARED_DIR", os.path.join(ROOT, "..", "shared"))

HF_SNIPPET = r"""
import json, os, sys, time
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers
path, corpus = sys.argv[1], sys.argv[2]
with open(corpus, "rb") as f:
    lines = f.read().split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
texts = [l.decode("utf-8", errors="replace") for l in lines]
t = time.perf_counter()
tok = tokenizers.Tokenizer.from_file(path)
load_s = time.perf_counter() - t
n_tokens = 0
t = time.perf_counter()
for text in texts:
    n_tokens += len(tok.encode(text, add_special_tokens=False).ids)
encode_s = time.perf_counter() - t
print(json.dumps({"load_s": load_s, "encode_s": encode_s, "tokens": n_tokens, "texts": len(texts),
                  "bytes": sum(len(l) for l in lines), "version": tokenizers.__version__}))
"""


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_lens(lens, model_dir, corpus):
    cpu = child_cpu()
    p = subprocess.run([lens, "tokenize", "--model", model_dir, "--file", corpus, "--no-special", "--timings"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    cpu = child_cpu() - cpu
    m = re.search(r"timings: load_s (\S+) encode_s (\S+) texts (\d+) bytes (\d+) tokens (\d+)", p.stderr)
    if not m:
        sys.exit(f"no timings line from lens: {p.stderr}")
    return {"load_s": float(m[1]), "encode_s": float(m[2]), "texts": int(m[3]), "bytes": int(m[4]),
            "tokens": int(m[5]), "cpu_s": cpu}


def run_hf(python, model_dir, corpus):
    cpu = child_cpu()
    env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    p = subprocess.run([python, "-c", HF_SNIPPET, os.path.join(model_dir, "tokenizer.json"), corpus],
                       stdout=subprocess.PIPE, env=env, text=True, check=True)
    r = json.loads(p.stdout)
    r["cpu_s"] = child_cpu() - cpu
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lens", default=os.path.join(ROOT, "build", "bin", "lens"))
    ap.add_argument("--python", default="/work/venv5/bin/python", help="a Python with `tokenizers` installed")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", default=os.path.join(ROOT, "tests", "tokenizers", "files"))
    ap.add_argument("--corpus", default=os.path.join(SHARED, "corpus", "wikitext-2-raw", "wiki.test.raw"))
    ap.add_argument("names", nargs="*", default=["llama3", "gemma3", "qwen3", "mistral"])
    a = ap.parse_args()
    if not os.path.exists(a.lens):
        sys.exit(f"{a.lens} not found: build lens first (or pass --lens)")
    size = os.path.getsize(a.corpus)
    print(f"corpus {a.corpus} ({size / 1e6:.2f} MB); {a.runs} runs each, alternating order; medians")
    print(f"{'tokenizer':<12} {'who':<5} {'load_s':>7} {'encode_s':>9} {'MB/s':>6} {'cpu_s':>6} {'tokens':>9}")
    for name in a.names:
        model_dir = os.path.join(a.files, name)
        if not os.path.exists(os.path.join(model_dir, "tokenizer.json")):
            print(f"{name}: no tokenizer.json under {model_dir} (run tests/tokenizers/fetch.sh)")
            continue
        results = {"lens": [], "hf": []}
        for run in range(a.runs):
            order = ["lens", "hf"] if run % 2 == 0 else ["hf", "lens"]
            for who in order:
                r = run_lens(a.lens, model_dir, a.corpus) if who == "lens" else run_hf(a.python, model_dir, a.corpus)
                results[who].append(r)
        for who in ("lens", "hf"):
            rs = results[who]
            load = statistics.median(r["load_s"] for r in rs)
            enc = statistics.median(r["encode_s"] for r in rs)
            cpu = statistics.median(r["cpu_s"] for r in rs)
            print(f"{name:<12} {who:<5} {load:7.3f} {enc:9.3f} {rs[0]['bytes'] / enc / 1e6:6.2f} {cpu:6.2f} "
                  f"{rs[0]['tokens']:9d}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
