# Trains a tuned lens for /work/shared/models/stories260K with the tuned-lens package's own training loop
# (tuned_lens.scripts.train_loop.Train.execute, the code behind `python -m tuned_lens train`), saves it in the
# package format to tests/fixtures/tuned-lens/stories260K-py/, and writes tests/fixtures/tuned-lens/stories260K-ref.json:
# the data recipe (+ checksums), the held-out token ids, per-layer held-out KL / CE / entropy for the logit lens and
# the trained tuned lens, and tuned-lens logits for one fixed 8-token input. The only deviations from the CLI are
# documented in README.md (in-order batches instead of torchdata's shuffle; 2 CPU threads).
# Usage: tests/tuned_lens_ref/setup_env.sh && .venv-tl/bin/python tests/tuned_lens_ref/train_ref.py [--no-autocast]

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import torch  # noqa: E402


def train(out_dir, autocast, num_steps, tokens_per_step, batch_size, threads):
    """Runs Train.execute; returns (seconds of the training loop after the first step, loader)."""
    common.install_import_stubs()
    import tuned_lens.scripts.ingredients as ing
    from tuned_lens.scripts.train_loop import Train

    torch.set_num_threads(threads)
    torch.manual_seed(common.SEED)
    loaders = common.patch_data_loader()
    if not autocast:
        # The package wraps each lens forward + loss in th.autocast(device.type, dtype=bfloat16); on CPU that runs
        # the translator and unembedding matmuls in bf16. --no-autocast disables it for an fp32 reference.
        import tuned_lens.scripts.train_loop as tl_train

        class _NoAutocast(torch.autocast):
            def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
                super().__init__(device_type, dtype=dtype, enabled=False)

        tl_train.th = types_ns(torch, autocast=_NoAutocast)

    stories = common.load_stories()
    tmp = tempfile.mkdtemp(prefix="tl-train-")
    try:
        jsonl = os.path.join(tmp, "train.jsonl")
        common.write_jsonl(stories[: common.N_TRAIN_STORIES], jsonl)
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        cwd = os.getcwd()
        os.chdir(common.MODEL_PARENT)  # Model(name="stories260K") resolves relative to cwd
        try:
            t = Train(
                model=ing.Model(name=common.MODEL_NAME, slow_tokenizer=True),
                data=ing.Data(name=[jsonl], max_length=common.SEQ_LEN),
                opt=ing.Optimizer(),
                dist=ing.Distributed(per_gpu_batch_size=batch_size),
                output=__import__("pathlib").Path(out_dir),
                seed=common.SEED,
                num_steps=num_steps,
                tokens_per_step=tokens_per_step,
            )
            t.execute()
            t_end = time.perf_counter()
        finally:
            os.chdir(cwd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loader = loaders[-1]
    grad_acc = tokens_per_step // (common.SEQ_LEN * batch_size)
    secs = t_end - loader.fetch_times[grad_acc] if len(loader.fetch_times) > grad_acc else float("nan")
    return secs, loader


class types_ns:
    """Proxy for the torch module seen by train_loop.py, overriding a few attributes."""

    def __init__(self, base, **overrides):
        self._base, self._over = base, overrides

    def __getattr__(self, name):
        return self._over[name] if name in self._over else getattr(self._base, name)


def main():
    ap = argparse.ArgumentParser(description="train the reference tuned lens for stories260K with tuned-lens")
    ap.add_argument("--no-autocast", action="store_true", help="train in float32 (package default: bf16 autocast)")
    ap.add_argument("--out", default=common.LENS_DIR, help="lens directory to write")
    ap.add_argument("--ref-json", default=common.REF_JSON, help="reference JSON to write ('' = none)")
    ap.add_argument("--steps", type=int, default=common.NUM_STEPS)
    ap.add_argument("--tokens-per-step", type=int, default=common.TOKENS_PER_STEP)
    ap.add_argument("--also-fp32", action="store_true",
                    help="also train a --no-autocast lens (temp dir) and record its held-out metrics")
    args = ap.parse_args()

    t0 = time.perf_counter()
    secs, loader = train(args.out, not args.no_autocast, args.steps, args.tokens_per_step, common.BATCH_SIZE,
                         common.THREADS)
    train_wall = time.perf_counter() - t0
    n_batches = len(loader.fetch_times)
    tokens_trained = args.steps * args.tokens_per_step
    print(f"trained {args.steps} steps x {args.tokens_per_step} tokens in {train_wall:.1f} s wall "
          f"(loop after step 1: {(args.steps - 1) * args.tokens_per_step / secs:.0f} tokens/s)", file=sys.stderr)

    torch.set_num_threads(common.THREADS)
    model, tok = common.load_model_and_tokenizer()
    stories = common.load_stories()

    # The exact training token stream (what the in-order loader fed) and its documented recipe must agree.
    train_ids = loader.dataset["input_ids"][: n_batches * common.BATCH_SIZE]
    recipe = common.simple_recipe(stories[: common.N_TRAIN_STORIES], os.path.join(common.MODEL_DIR, "tokenizer.model"))
    all_train = loader.dataset["input_ids"].tolist()
    if recipe != all_train:
        sys.exit("error: simple_recipe() does not reproduce chunk_and_tokenize on the training stories")
    heldout_all = common.heldout_chunks(tok, stories)
    heldout = heldout_all[: common.N_EVAL_CHUNKS]

    lenses = common.load_lenses(model, args.out)
    metrics = common.layer_metrics(model, lenses, heldout)
    fixed = heldout[:1, : common.N_FIXED]
    fixed_hidden, fixed_logits = common.fixed_outputs(model, lenses["tuned"], fixed)
    metrics_fp32 = None
    if args.also_fp32 and not args.no_autocast:
        tmp_lens = tempfile.mkdtemp(prefix="tl-fp32-")
        try:
            train(tmp_lens, False, args.steps, args.tokens_per_step, common.BATCH_SIZE, common.THREADS)
            metrics_fp32 = common.layer_metrics(model, {"tuned": common.load_lenses(model, tmp_lens)["tuned"]},
                                                heldout)["tuned"]
        finally:
            shutil.rmtree(tmp_lens, ignore_errors=True)

    import transformers
    from importlib.metadata import version

    chunks_used = tokens_trained // common.SEQ_LEN
    cps = args.tokens_per_step // common.SEQ_LEN
    doc = {
        "schema_version": 1,
        "note": "Generated by tests/tuned_lens_ref/train_ref.py with the tuned-lens package; see "
                "tests/tuned_lens_ref/README.md and NOTES.md. Metrics are nats/token, float32, no autocast.",
        "package": {"tuned_lens": version("tuned-lens"), "transformers": transformers.__version__,
                    "torch": torch.__version__},
        "model": common.MODEL_NAME,
        "lens_dir": os.path.relpath(args.out, common.REPO_ROOT),
        "data": {
            "corpus": "corpus/tinystories/tinystories_train_first2MiB.complete.txt",
            "corpus_sha256": common.CORPUS_SHA256,
            "stories": "split on '<|endoftext|>', strip() each piece, drop empty pieces -> %d stories" % len(stories),
            "train_stories": [0, common.N_TRAIN_STORIES],
            "heldout_stories": [common.HELDOUT_FIRST_STORY, len(stories)],
            "packing": "per group of <=2048 stories (one datasets.map batch): ids = [BOS=1] + concat([EOS=2] + "
                       "sentencepiece.encode(story)) (slow LlamaTokenizer, legacy) cut into seq_len chunks; the last "
                       "chunk is always dropped",
            "seq_len": common.SEQ_LEN,
            "train_chunks_total": len(all_train),
            "train_ids_sha256": common.ids_sha256(all_train),
            "train_order": f"in order: step s uses chunks [s*{cps}, (s+1)*{cps}), as {cps // common.BATCH_SIZE} "
                           f"micro-batches of {common.BATCH_SIZE}",
            "train_chunks_used": chunks_used,
            "train_ids_used_sha256": common.ids_sha256(train_ids[:chunks_used].tolist()),
            "train_first_chunk": all_train[0],
            "heldout_chunks_total": len(heldout_all),
            "heldout_ids": heldout.tolist(),
        },
        "train": {
            "loss": "kl", "token_shift": 0, "num_steps": args.steps, "tokens_per_step": args.tokens_per_step,
            "per_gpu_batch_size": common.BATCH_SIZE,
            "grad_acc_steps": args.tokens_per_step // (common.SEQ_LEN * common.BATCH_SIZE),
            "optimizer": "SGD nesterov momentum=0.9 lr=1.0*(1-0.9)=0.1 weight_decay=1e-3",
            "schedule": "get_linear_schedule_with_warmup(warmup=0, total=num_steps): lr *= (num_steps-step)/num_steps",
            "clip_grad_norm": 1.0, "init": "zeros (identity map)",
            "autocast_bf16": not args.no_autocast, "seed": common.SEED, "threads": common.THREADS,
            "wall_s": round(train_wall, 2),
            "loop_tokens_per_s": round((args.steps - 1) * args.tokens_per_step / secs, 1),
        },
        "heldout_metrics": metrics,
        "heldout_metrics_tuned_trained_fp32": metrics_fp32,
        "fixed_input": {
            "input_ids": fixed[0].tolist(),
            "what": "first 8 tokens of heldout chunk 0; per layer i (0..L-1): tuned.transform_hidden(h_i) = "
                    "h_i + W_i h_i + b_i (d_model) and tuned logits = unembed(final_norm(that)) (vocab)",
            "expected_max_abs_diff": "values rounded to 7 significant digits (<= 5e-6 here); float32 C++ vs this: ~1e-5; test with 1e-4",
            "tuned_hidden": [common.round_list(x) for x in fixed_hidden],
            "tuned_logits": [common.round_list(x) for x in fixed_logits],
        },
    }
    if args.ref_json:
        os.makedirs(os.path.dirname(args.ref_json), exist_ok=True)
        tmp = args.ref_json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, args.ref_json)
    print_table(metrics)


def print_table(metrics):
    L = len(metrics["logit"]["kl"])
    print(f"{'layer':>5} | {'KL logit':>9} {'KL tuned':>9} | {'CE logit':>9} {'CE tuned':>9} | "
          f"{'H logit':>8} {'H tuned':>8}   (nats/token, held-out)")
    for i in range(L):
        row = [metrics["logit"]["kl"][i], metrics.get("tuned", metrics["logit"])["kl"][i],
               metrics["logit"]["ce"][i], metrics.get("tuned", metrics["logit"])["ce"][i],
               metrics["logit"]["entropy"][i], metrics.get("tuned", metrics["logit"])["entropy"][i]]
        print(f"{i:>5} | {row[0]:9.4f} {row[1]:9.4f} | {row[2]:9.4f} {row[3]:9.4f} | {row[4]:8.4f} {row[5]:8.4f}")
    print(f"final | CE {metrics['final']['ce']:.4f}  H {metrics['final']['entropy']:.4f}")


if __name__ == "__main__":
    main()
