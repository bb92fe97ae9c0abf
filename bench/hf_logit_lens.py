#!/usr/bin/env python3
"""The logit lens in transformers, as the peer `bench/bench_contention.py` times against `lens run`.

Same work as `lens run --token-ids ... --positions all --layers all -k 5 -o OUT`: one forward pass with every
hidden state, then at every layer and position the final norm (not on the last hidden state, which transformers
has already normed) and the unembedding, log-softmax in float32, the top 5, the entropy, KL(final || layer) and
the final top-1 token's rank; the result is written as JSON. It needs transformers (5.x) and torch, e.g. the venv
of bench/README.md; it runs with torch's default threads and the caller's environment, never changing either.

Usage: python bench/hf_logit_lens.py MODEL_DIR --dtype float32|bfloat16 --token-ids 1,2,3 -o OUT.json
"""
import argparse
import json
import sys
import time

T_START = time.perf_counter()

import torch  # noqa: E402
import transformers  # noqa: E402


def final_norm(model):
    """The final norm module of a GPT-2 or LLaMA-style model."""
    base = model.base_model
    for name in ("ln_f", "norm", "final_layer_norm"):
        if hasattr(base, name):
            return getattr(base, name)
    raise SystemExit(f"error: no final norm found on {type(base).__name__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--token-ids", required=True)
    ap.add_argument("-k", "--top-k", type=int, default=5)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    t_import = time.perf_counter()

    transformers.utils.logging.disable_progress_bar()  # stderr stays readable in the benchmark's log
    dtype = getattr(torch, args.dtype)
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype)
    model.eval()
    ids = torch.tensor([[int(x) for x in args.token_ids.split(",")]])
    t_load = time.perf_counter()

    layers = []
    with torch.inference_mode():
        out = model(ids, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states  # n_layer + 1 of (1, T, d_model)
        norm, head = final_norm(model), model.get_output_embeddings()
        n = len(hidden)
        final_logp = torch.log_softmax(out.logits[0].float(), dim=-1)  # (T, vocab)
        final_top1 = final_logp.argmax(dim=-1)  # (T,)
        for layer, h in enumerate(hidden):
            x = h[0] if layer == n - 1 else norm(h[0])
            logp = torch.log_softmax(head(x).float(), dim=-1)  # (T, vocab)
            p = logp.exp()
            entropy = -(p * logp).sum(-1)
            kl = (final_logp.exp() * (final_logp - logp)).sum(-1)
            top_lp, top_id = logp.topk(args.top_k, dim=-1)
            f_lp = logp.gather(1, final_top1[:, None])[:, 0]
            f_rank = (logp > f_lp[:, None]).sum(-1) + 1
            positions = []
            for t in range(logp.shape[0]):
                positions.append({
                    "pos": t, "entropy": float(entropy[t]), "kl_to_final": float(kl[t]),
                    "top": [{"id": int(i), "prob": float(lp.exp())} for i, lp in zip(top_id[t], top_lp[t])],
                    "final_top1": {"id": int(final_top1[t]), "rank": int(f_rank[t]), "prob": float(f_lp[t].exp())},
                })
            layers.append({"layer": layer, "positions": positions})
    t_compute = time.perf_counter()
    with open(args.output, "w") as f:
        json.dump({"model": args.model, "dtype": args.dtype, "layers": layers,
                   "runtime": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                               "transformers": transformers.__version__},
                   "timing": {"import": t_import - T_START, "load": t_load - t_import,
                              "compute": t_compute - t_load, "write": time.perf_counter() - t_compute}}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
