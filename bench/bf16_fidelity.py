#!/usr/bin/env python3
"""bfloat16 fidelity: lens vs transformers, each against a float64 reference, on every v5 fixture.

For each checkpoint in tests/fixtures/v5 (tiny random models written by transformers 5.23, one per
family and RoPE type), the same random token sequences run through
  - transformers 5.23 in float64 (eager attention): the reference distribution p64;
  - transformers 5.23 in bfloat16 (eager): its own bfloat16 run;
  - lens --dtype bfloat16 (bfloat16 weights, float32 activations), reading every token's final-layer
    probability from `lens run --top-k V --layers -1 --json`.
and reports, per family, the share of positions whose top-1 token equals the reference's and the
mean KL(p64 || p) in nats. The issue's bar: lens's bfloat16 run is at least as close as transformers'.

Both runs round their final logits to bfloat16 (8 significant bits), so where the reference's top two
logits are closer than two bfloat16 steps of their magnitude the top-1 is a coin toss for any
bfloat16 run (measured: every top-1 miss of either side on v5-gemma had a reference probability margin
below 1e-3, and half were exact ties after rounding). The verdict therefore compares top-1 on the
positions the bfloat16 logits can resolve ("resolvable"), and mean KL on all positions; the raw
top-1 rate over all positions is printed too.

Usage: /path/to/venv/bin/python bench/bf16_fidelity.py [--lens build/bin/lens] [--seqs 4] [--len 32]
The venv needs torch and transformers==5.23.* (tests/parity/requirements-v5.txt). Not part of ctest.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import torch
import transformers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def lens_probs(lens, model_dir, ids, vocab):
    out = subprocess.run([lens, "run", "--model", model_dir, "--token-ids", ",".join(map(str, ids)), "--dtype",
                          "bfloat16", "--top-k", str(vocab), "--layers", "-1", "--json", "-q", "--threads", "1"],
                         check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    p = torch.zeros(len(ids), vocab, dtype=torch.float64)
    for pos in doc["layers"][-1]["positions"]:
        for t in pos["top"]:
            p[pos["pos"], t["id"]] = t["prob"]
    return p


def kl(p_ref, p):
    return (p_ref * (p_ref.clamp_min(1e-300).log() - p.clamp_min(1e-300).log())).sum(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lens", default=os.path.join(ROOT, "build", "bin", "lens"))
    ap.add_argument("--seqs", type=int, default=4)
    ap.add_argument("--len", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    fixtures = sorted(os.listdir(os.path.join(ROOT, "tests", "fixtures", "v5")))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}; {args.seqs} sequences x "
          f"{args.len} tokens per checkpoint; float64 eager reference")
    print(f"{'':26s} {'top-1 = reference':^15s} {'resolvable top-1':^15s} {'share':>6s} {'mean KL (nats)':^21s}")
    print(f"{'fixture':26s} {'lens':>7s} {'HF':>7s} {'lens':>7s} {'HF':>7s} {'resolv':>6s} {'lens':>10s} {'HF':>10s}  "
          "lens at least as close", flush=True)
    all_ok = True
    for name in fixtures:
        d = os.path.join(ROOT, "tests", "fixtures", "v5", name)
        m64 = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float64, attn_implementation="eager").eval()
        m16 = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager").eval()
        vocab = m64.config.vocab_size
        g = torch.Generator().manual_seed(1234)
        same = {"lens": 0, "hf": 0}
        res = {"lens": 0, "hf": 0}
        nres = 0
        kls = {"lens": 0.0, "hf": 0.0}
        n = 0
        for _ in range(args.seqs):
            ids = torch.randint(3, vocab, (args.len,), generator=g).tolist()
            with torch.no_grad():
                p64 = m64(torch.tensor([ids]), use_cache=False).logits[0].double().softmax(-1)
                phf = m16(torch.tensor([ids]), use_cache=False).logits[0].double().softmax(-1)
            plens = lens_probs(args.lens, d, ids, vocab)
            top = p64.argmax(-1)
            with torch.no_grad():
                l64 = m64(torch.tensor([ids]), use_cache=False).logits[0].double()
            two = l64.topk(2, dim=-1).values  # (T, 2)
            step = torch.exp2(torch.floor(torch.log2(two[:, 0].abs().clamp_min(1e-30))) - 7)  # bf16 ulp
            ok_pos = (two[:, 0] - two[:, 1]) > 2 * step
            same["lens"] += int((plens.argmax(-1) == top).sum())
            same["hf"] += int((phf.argmax(-1) == top).sum())
            res["lens"] += int(((plens.argmax(-1) == top) & ok_pos).sum())
            res["hf"] += int(((phf.argmax(-1) == top) & ok_pos).sum())
            nres += int(ok_pos.sum())
            kls["lens"] += float(kl(p64, plens).sum())
            kls["hf"] += float(kl(p64, phf).sum())
            n += len(ids)
        ok = res["lens"] >= res["hf"] and kls["lens"] <= kls["hf"]
        all_ok &= ok
        print(f"{name:26s} {same['lens'] / n:7.3f} {same['hf'] / n:7.3f} {res['lens'] / nres:7.3f} {res['hf'] / nres:7.3f}"
              f" {nres / n:6.2f} {kls['lens'] / n:10.2e} {kls['hf'] / n:10.2e}  {'yes' if ok else 'NO'}", flush=True)
    print("all fixtures: lens at least as close as transformers' bfloat16 run:", "yes" if all_ok else "NO")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
