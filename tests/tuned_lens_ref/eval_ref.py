# Loads a tuned-lens directory (config.json + params.pt, package format; e.g. one written by the C++ `lens` trainer)
# with the tuned-lens package and reports the same per-layer held-out metrics as train_ref.py (KL(final||layer), CE,
# entropy; nats/token) plus the lens's outputs on the fixed 8-token input. With --ref it also prints how far they
# are from the committed reference (tests/fixtures/tuned-lens/stories260K-ref.json).
# Usage: .venv-tl/bin/python tests/tuned_lens_ref/eval_ref.py LENS_DIR [--out FILE.json] [--ref REF.json]
#        [--package-eval]   (also runs the package's own Eval loop and checks it agrees with ours)

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import torch  # noqa: E402


def package_eval(lens_dir, stories, n_chunks, nats_to_bpb):
    """Runs tuned_lens.scripts.eval_loop.Eval.execute (logit + tuned) on the held-out stories, first n_chunks chunks
    in order; returns its aggregate metrics converted back from bits/byte to nats/token."""
    common.install_import_stubs()
    import tuned_lens.scripts.ingredients as ing
    from tuned_lens.scripts.eval_loop import Eval

    common.patch_data_loader()
    tmp = tempfile.mkdtemp(prefix="tl-eval-")
    cwd = os.getcwd()
    try:
        jsonl = os.path.join(tmp, "heldout.jsonl")
        common.write_jsonl(stories[common.HELDOUT_FIRST_STORY :], jsonl)
        os.chdir(common.MODEL_PARENT)
        ev = Eval(
            data=ing.Data(name=[jsonl], max_length=common.SEQ_LEN),
            model=ing.Model(name=common.MODEL_NAME, slow_tokenizer=True),
            dist=ing.Distributed(per_gpu_batch_size=1),
            output=__import__("pathlib").Path(tmp) / "out",
            lens_name=os.path.abspath(os.path.join(cwd, lens_dir)),
            lens_types=["logit", "tuned"],
            tokens=n_chunks * common.SEQ_LEN,
        )
        ev.execute()
        with open(os.path.join(tmp, "out", "aggregate_metrics.json")) as f:
            agg = json.load(f)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)
    L = len(agg["logit"]["kl"])
    res = {lt: {m: [agg[lt][m][f"layer_{i}"] / nats_to_bpb for i in range(L)] for m in ("kl", "ce", "entropy")}
           for lt in ("logit", "tuned")}
    res["final"] = {m: agg["baseline"][m]["final"] / nats_to_bpb for m in ("ce", "entropy")}
    return res


def max_metric_diff(a, b):
    d = 0.0
    for lt in ("logit", "tuned"):
        for m in ("kl", "ce", "entropy"):
            d = max(d, max(abs(x - y) for x, y in zip(a[lt][m], b[lt][m])))
    for m in ("ce", "entropy"):
        d = max(d, abs(a["final"][m] - b["final"][m]))
    return d


def main():
    ap = argparse.ArgumentParser(description="per-layer held-out metrics of a tuned-lens directory")
    ap.add_argument("lens_dir")
    ap.add_argument("--out", help="write the metrics JSON here")
    ap.add_argument("--ref", help="reference JSON to compare with (e.g. tests/fixtures/tuned-lens/stories260K-ref.json)")
    ap.add_argument("--package-eval", action="store_true", help="cross-check with the package's Eval loop")
    args = ap.parse_args()
    for f in ("config.json", "params.pt"):
        if not os.path.isfile(os.path.join(args.lens_dir, f)):
            sys.exit(f"error: {args.lens_dir}: missing {f}")

    torch.set_num_threads(common.THREADS)
    model, tok = common.load_model_and_tokenizer()
    stories = common.load_stories()
    heldout_all, nats_to_bpb = common.tokenize_chunks(stories[common.HELDOUT_FIRST_STORY :], tok, with_ratio=True)
    heldout = heldout_all[: common.N_EVAL_CHUNKS]
    lenses = common.load_lenses(model, args.lens_dir)
    metrics = common.layer_metrics(model, lenses, heldout)
    fixed = heldout[:1, : common.N_FIXED]
    hidden, logits = common.fixed_outputs(model, lenses["tuned"], fixed)

    from train_ref import print_table

    print_table(metrics)
    doc = {
        "schema_version": 1,
        "lens_dir": args.lens_dir,
        "heldout": f"first {common.N_EVAL_CHUNKS} chunks of the held-out stories (see stories260K-ref.json)",
        "heldout_metrics": metrics,
        "fixed_input": {"input_ids": fixed[0].tolist(),
                        "tuned_hidden": [common.round_list(x) for x in hidden],
                        "tuned_logits": [common.round_list(x) for x in logits]},
    }
    rc = 0
    if args.package_eval:
        pk = package_eval(args.lens_dir, stories, common.N_EVAL_CHUNKS, nats_to_bpb)
        d = max_metric_diff(metrics, pk)
        print(f"package Eval loop vs ours: max |diff| = {d:.2e} nats/token (tolerance 1e-4)")
        doc["package_eval_max_abs_diff"] = d
        rc |= d > 1e-4
    if args.ref:
        with open(args.ref) as f:
            ref = json.load(f)
        if ref["data"]["heldout_ids"] != heldout.tolist():
            sys.exit("error: held-out ids differ from the reference's")
        dm = {}
        for lt in ("logit", "tuned"):
            dm[lt] = [abs(x - y) for x, y in zip(metrics[lt]["kl"], ref["heldout_metrics"][lt]["kl"])]
            print(f"KL {lt:5s}: ours - ref per layer: " +
                  " ".join(f"{x - y:+.4f}" for x, y in zip(metrics[lt]["kl"], ref["heldout_metrics"][lt]["kl"])))
        ref_logits = torch.tensor(ref["fixed_input"]["tuned_logits"])
        diff = (torch.stack(logits) - ref_logits).abs().max().item()
        print(f"fixed-input tuned logits vs ref: max |diff| = {diff:.2e} (same lens => ~5e-6, the 7-digit rounding)")
        doc["ref_compare"] = {"kl_abs_diff": dm, "fixed_logits_max_abs_diff": diff}
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, args.out)
    sys.exit(rc)


if __name__ == "__main__":
    main()
