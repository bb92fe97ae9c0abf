#!/usr/bin/env python3
"""How much slower `lens run` and the transformers logit lens get when the CPUs are shared.

For each checkpoint (default: the random GPT-2 small and TinyLlama-1.1B checkpoints of make_random_checkpoint.py,
float32 and bfloat16) and T random token ids (default 128), three conditions:
  idle     nothing else started by the benchmark
  busy     one spinning process per spare CPU (CPUs of this process's affinity mask minus one) beside the run
  taskset  every run under `taskset -c 0`, default settings
one warm-up run per variant, then --rounds rounds; in each round every condition, and in it every variant, runs
once, both orders rotated from round to round (paired and alternating, so load that drifts during the benchmark
hits all conditions and variants alike). Variants:
  lens         `lens run` with its defaults (the launcher's OMP_WAIT_POLICY=PASSIVE, threads from the allocation)
  lens-before  lens as it ran before issue #28: lens-bin started directly (libgomp's default spin-then-sleep wait)
               with --threads set to all online CPUs
  lens-active  `lens run` with OMP_WAIT_POLICY=ACTIVE (the fastest case on an idle machine; idle condition only)
  hf           bench/hf_logit_lens.py (transformers, torch's default threads) in --python
  lens:NAME=VALUE[:NAME=VALUE]  `lens run` with these variables set (e.g. lens:GOMP_SPINCOUNT=10000)
Each run is a whole process (start-up, loading, forward, lens at every layer and position, JSON to a file), with
OMP_WAIT_POLICY, GOMP_SPINCOUNT, OMP_NUM_THREADS, SLURM_CPUS_PER_TASK removed from its environment unless the
variant sets one. Prints median wall seconds, slowdowns against idle (the median of the per-round ratios), and
transformers' time over lens's ("lead", also the median of the per-round ratios; also for the compute alone: lens's forward and lens stages from --timing,
hf_logit_lens.py's forward and lens). Not part of the tests. See bench/README.md.

Usage: python3 bench/bench_contention.py [--models-root DIR] [--models gpt2,llama-1b] [--dtypes float32,bfloat16]
           [--T 128] [--rounds 3] [--conditions idle,busy,taskset] [--variants lens,lens-before,lens-active,hf]
           [--lens build/bin/lens] [--python /work/venv5/bin/python]
"""
import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench  # noqa: E402  (run_once, find_lens, model_info)

DEFAULT_PYTHON = os.environ.get("LENS_BENCH_PYTHON", "/work/venv5/bin/python")
CLEARED_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK", "LENS_OMP_WAIT_SET")
VARIANTS = ("lens", "lens-before", "lens-active", "hf")
TIMEOUT_S = 900


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def variant_command(variant, args, model_dir, dtype, ids, out_path):
    """(argv, extra environment) of one run."""
    if variant == "hf":
        return [args.python, os.path.join(HERE, "hf_logit_lens.py"), model_dir, "--dtype", dtype,
                "--token-ids", ids, "-o", out_path], {}
    exe = args.lens
    argv = ["run", "--model", model_dir, "--token-ids", ids, "--dtype", dtype, "--positions", "all",
            "--layers", "all", "-q", "--timing", "-o", out_path]
    if variant == "lens-before":
        return [os.path.join(os.path.dirname(args.lens), "lens-bin")] + argv + ["--threads", str(os.cpu_count())], {}
    argv = [exe] + argv
    if variant == "lens-active":
        return argv, {"OMP_WAIT_POLICY": "ACTIVE"}
    # "lens:NAME=VALUE[:NAME=VALUE]": the launcher with these variables, e.g. lens:GOMP_SPINCOUNT=10000
    return argv, dict(kv.split("=", 1) for kv in variant.split(":")[1:])


def run_variant(variant, args, model_dir, dtype, ids, condition):
    with tempfile.TemporaryDirectory(prefix="lens-contention-") as tmp:
        out_path = os.path.join(tmp, "out.json")
        argv, extra = variant_command(variant, args, model_dir, dtype, ids, out_path)
        if condition == "taskset":
            argv = ["taskset", "-c", "0"] + argv
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        env.update(extra)
        wall, rss, rc, tail, cpu = run_bench.run_once(argv, TIMEOUT_S, env)
        rec = {"variant": variant, "wall_s": wall, "cpu_s": cpu, "peak_rss": rss, "rc": rc}
        if rc != 0:
            rec["stderr_tail"] = tail
            log(f"  {variant}: FAILED rc={rc}: {tail[-500:]}")
            return rec
        with open(out_path) as f:
            doc = json.load(f)
        rec["runtime"] = doc.get("runtime")
        timing = doc.get("timing", {})
        rec["compute_s"] = (timing.get("compute") if variant == "hf" else
                            sum(timing.get(s, 0.0) for s in run_bench.COMPUTE_STAGES))
        return rec


def start_busy(n):
    """n processes that spin on a CPU each (not pinned) until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_busy(procs):
    for p in procs:
        p.kill()
        p.wait()


def times(x):
    return "-" if x is None else f"{x:.2f}x"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def condition_variants(args, condition):
    # lens-active is the reference for the idle machine only; spinning beside busy neighbours is what lens avoids.
    return [v for v in args.variants if condition == "idle" or v != "lens-active"]


def run_condition(args, model_dir, dtype, ids, condition, r):
    """One round of one condition: every variant once, in an order rotated by the round number."""
    variants = condition_variants(args, condition)
    n_busy = max(1, len(os.sched_getaffinity(0)) - 1) if condition == "busy" else 0
    k = r % len(variants)
    order = variants[k:] + variants[:k]
    busy = start_busy(n_busy)
    try:
        loadavg = os.getloadavg()[0]
        recs = {v: run_variant(v, args, model_dir, dtype, ids, condition) for v in order}
    finally:
        stop_busy(busy)
    log(f"  round {r} {condition} (load {loadavg:.2f}): " + ", ".join(f"{v} {recs[v]['wall_s']:.2f} s" for v in order))
    return {"order": order, "runs": recs, "busy_processes": n_busy, "loadavg_before": loadavg}


def bench_checkpoint(args, model_dir, dtype, ids, conditions):
    """Warm-up, then rounds; each round runs every condition (order rotated), so a round's conditions are paired."""
    log(f"{os.path.basename(model_dir)} {dtype}: warm-up")
    for v in args.variants:  # page cache, Python's bytecode cache
        run_variant(v, args, model_dir, dtype, ids, "idle")
    out = {c: {"rounds": []} for c in conditions}
    for r in range(args.rounds):
        k = r % len(conditions)
        for c in conditions[k:] + conditions[:k]:
            out[c]["rounds"].append(run_condition(args, model_dir, dtype, ids, c, r))
    return out


def paired_ratios(result, c_num, v_num, c_den, v_den, key):
    """Per round: run (c_num, v_num)'s `key` over run (c_den, v_den)'s, where both succeeded."""
    num = result["conditions"].get(c_num, {}).get("rounds", [])
    den = result["conditions"].get(c_den, {}).get("rounds", [])
    out = []
    for a, b in zip(num, den):
        ra, rb = a["runs"].get(v_num), b["runs"].get(v_den)
        if ra and rb and ra["rc"] == 0 and rb["rc"] == 0 and ra.get(key) and rb.get(key):
            out.append(ra[key] / rb[key])
    return out


def summarize(results, variants):
    """Markdown table: per model/dtype/variant, median wall (and CPU) seconds per condition and slowdowns against
    idle; then the paired lead and lens / lens-active rows."""
    conds = [c for c in ("idle", "busy", "taskset") if any(c in r["conditions"] for r in results)]
    head = "| model | dtype | variant | " + " | ".join(
        f"{c} s" + (" | idle CPU s" if c == "idle" else f" | {c}/idle") for c in conds) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        med = {}
        for c in conds:
            rounds = r["conditions"].get(c, {}).get("rounds", [])
            for v in variants:
                for key in ("wall_s", "cpu_s"):
                    med[c, v, key] = median([rd["runs"][v].get(key) for rd in rounds
                                             if v in rd["runs"] and rd["runs"][v]["rc"] == 0])
        for v in variants:
            cells = []
            for c in conds:
                cells.append(run_bench.fmt(med[c, v, "wall_s"], ".2f"))
                if c == "idle":
                    cells.append(run_bench.fmt(med[c, v, "cpu_s"], ".2f"))
                else:  # the median of the per-round ratios (a round's conditions ran back to back)
                    cells.append(times(median(paired_ratios(r, c, v, "idle", v, "wall_s"))))
            lines.append(f"| {r['model']} | {r['dtype']} | {v} | " + " | ".join(cells) + " |")
        # Paired ratios within rounds: transformers over lens (lead), lens over lens-active.
        for num, den, key, label in (("hf", "lens", "wall_s", "lead: hf / lens"),
                                     ("hf", "lens", "compute_s", "lead, compute only"),
                                     ("lens", "lens-active", "wall_s", "lens / lens-active")):
            if num not in variants or den not in variants:
                continue
            cells = []
            for c in conds:
                cells += [times(median(paired_ratios(r, c, num, c, den, key))), ""]
            lines.append(f"| {r['model']} | {r['dtype']} | {label} (paired median) | " + " | ".join(cells) + " |")
        r["medians"] = {f"{c}/{v}/{key}": m for (c, v, key), m in med.items()}
    return "\n".join(lines)


def check_python(python):
    try:
        out = subprocess.run([python, "-c", "import torch, transformers; print(torch.__version__, transformers.__version__)"],
                             capture_output=True, text=True, timeout=300)
    except OSError as e:
        return None, str(e)
    return (out.stdout.strip(), "") if out.returncode == 0 else (None, out.stderr.strip()[-500:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-root", default=run_bench.DEFAULT_MODELS_ROOT)
    ap.add_argument("--models", default="gpt2,llama-1b", help="checkpoint names under --models-root (<name>-<dtype>)")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--T", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conditions", default="idle,busy,taskset")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--lens", help="the lens launcher (default: build/bin/lens of this repository)")
    ap.add_argument("--python", default=DEFAULT_PYTHON, help="python with torch and transformers 5.x (bench/README.md)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.lens = os.path.abspath(args.lens or run_bench.find_lens() or "")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in args.variants:
        if v not in VARIANTS and not (v.startswith("lens:") and all("=" in kv for kv in v.split(":")[1:])):
            sys.exit(f"error: unknown variant {v!r} (choose from {', '.join(VARIANTS)}, or lens:NAME=VALUE)")
    if any(v.startswith("lens") for v in args.variants) and not os.access(args.lens, os.X_OK):
        sys.exit(f"error: no lens executable at {args.lens!r} (build first, or --lens PATH)")
    versions = None
    if "hf" in args.variants:
        versions, why = check_python(args.python)
        if not versions:
            sys.exit(f"error: {args.python} cannot import torch and transformers ({why}); make the venv of "
                     "bench/README.md or pass --python")
        log(f"transformers side: {args.python} (torch, transformers {versions})")

    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(HERE, "out", f"contention-{stamp}.json")

    def save(results, table=None):  # after every checkpoint, so a stopped run keeps what it measured
        with open(path + ".tmp", "w") as f:
            json.dump({"started_utc": stamp, "cpus": len(os.sched_getaffinity(0)), "nice": os.nice(0),
                       "python": args.python, "hf_versions": versions, "lens": args.lens, "T": args.T,
                       "rounds": args.rounds, "results": results, "table": table}, f, indent=1)
        os.replace(path + ".tmp", path)

    rng = random.Random(args.seed)
    results = []
    for name in args.models.split(","):
        for dtype in args.dtypes.split(","):
            model_dir = os.path.join(args.models_root, f"{name}-{dtype}")
            if not os.path.isdir(model_dir):
                log(f"skipping {model_dir}: not there (bench/make_random_checkpoint.py {name} --dtype {dtype})")
                continue
            info = run_bench.model_info(model_dir)
            ids = ",".join(str(rng.randrange(info["vocab_size"])) for _ in range(args.T))
            res = {"model": name, "dtype": dtype, "dir": model_dir, "T": args.T}
            res["conditions"] = bench_checkpoint(args, model_dir, dtype, ids, args.conditions.split(","))
            results.append(res)
            log(summarize([res], args.variants))
            save(results)

    table = summarize(results, args.variants)
    print(table)
    save(results, table)
    log(f"wrote {path}")
    failed = any(run["rc"] != 0 for r in results for c in r["conditions"].values() for rd in c["rounds"]
                 for run in rd["runs"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
