#!/usr/bin/env python3
"""Stand-in for the `lens` binary, to test bench/run_bench.py before lens exists (not a benchmark of anything).

Accepts `run --model DIR --token-ids ... --threads N --dtype D --positions all --json -o OUT`, touches
FAKE_LENS_MB MiB of memory (default 64), sleeps ~1 ms per token, and writes a minimal run JSON with final_check.
It fails with exit code 3 when FAKE_LENS_FAIL is a substring of "<model dir name> <dtype> T=<n>".
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("cmd")
ap.add_argument("--model", required=True)
ap.add_argument("--token-ids", required=True)
ap.add_argument("--threads", type=int)
ap.add_argument("--dtype")
ap.add_argument("--positions")
ap.add_argument("--json", action="store_true")
ap.add_argument("-o", required=True)
ap.add_argument("--timing", action="store_true")
a = ap.parse_args()
ids = [int(x) for x in a.token_ids.split(",")]
with open(os.path.join(a.model, "config.json")) as f:
    c = json.load(f)
vocab = c["vocab_size"]
n_layer = c.get("n_layer") or c.get("num_hidden_layers")
if any(not 0 <= i < vocab for i in ids):
    print("error: token id out of range", file=sys.stderr)
    sys.exit(2)
key = f"{os.path.basename(os.path.normpath(a.model))} {a.dtype} T={len(ids)}"
if os.environ.get("FAKE_LENS_FAIL") and os.environ["FAKE_LENS_FAIL"] in key:
    print(f"error: fake failure for {key}", file=sys.stderr)
    sys.exit(3)
buf = bytearray(int(os.environ.get("FAKE_LENS_MB", "64")) << 20)
for i in range(0, len(buf), 4096):
    buf[i] = 1
time.sleep(0.001 * len(ids))
doc = {"schema_version": 1,
       "model": {"path": os.path.abspath(a.model), "n_layer": n_layer, "vocab_size": vocab, "dtype": a.dtype},
       "lens": "logit", "tokens": [{"id": i, "text": "?"} for i in ids],
       "final_check": {"max_abs_diff": 1e-6, "tolerance": 1e-4, "ok": True},
       "layers": [{"layer": l, "positions": []} for l in range(n_layer + 1)]}
if a.timing:  # the stages lens reports; only their shape matters here
    doc["timing"] = {"load": 0.001, "forward": 0.0005 * len(ids), "lens_prepare": 0.0001, "lens_logits": 0.0003 * len(ids),
                     "lens_check": 0.0001, "lens_reduce": 0.0002 * len(ids), "json": 0.001}
with open(a.o, "w") as f:
    json.dump(doc, f)
