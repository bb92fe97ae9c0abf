#!/usr/bin/env python3
"""Benchmark `lens run` on checkpoints: wall time, achieved FLOP/s against the machine's matmul rate, peak RSS.

For each model directory, dtype and prompt length T it runs
  lens run --model DIR --token-ids <T random ids> --threads N --dtype D --positions all --json -o TMP
once to warm up (page cache, allocator) and then --repeats times, and reports medians (see bench/README.md and
/work/shared/PERF.md for what the figures mean). Standard library only; --measure-rate alone uses
/usr/bin/python3 with torch. It never builds lens and never writes into the model directories.

Usage: python3 bench/run_bench.py [MODEL_DIR ...] [--lens PATH] [--dtypes auto|float32,bfloat16] [--T 16,128,512]
"""
import argparse
import datetime
import json
import os
import platform
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_MODELS_ROOT = "/work/bench-models"
# PERF.md: torch::mm 2048x2048 with libopenblas0-pthread and 2 threads on this machine kind, GFLOP/s.
PERF_MD_RATES = {"float32": 218.0, "bfloat16": 840.0}
LENS_CANDIDATES = ["build/bin/lens", "build/lens", "build/tools/lens/lens", "build/tools/lens"]
EMBEDDING_SUFFIXES = ("wte.weight", "wpe.weight", "embed_tokens.weight", "lm_head.weight", "embed_in.weight",
                      "embed_out.weight", "word_embeddings.weight")
# `lens run --timing` stages that make up the model and lens computation (the rest: load, json, write).
COMPUTE_STAGES = ("forward", "lens_prepare", "lens_logits", "lens_check", "lens_reduce")
ST_DTYPE_NAMES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- checkpoint


def read_st_header(path):
    """Header dict and data-section size (bytes) of one safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return header, os.path.getsize(path) - 8 - n


def model_info(model_dir):
    """Shapes, parameter counts and weight bytes of a HF checkpoint directory (config.json + safetensors)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)

    def pick(*keys):
        for k in keys:
            if c.get(k) is not None:
                return c[k]
        raise KeyError(f"{model_dir}/config.json: none of {keys}")

    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(os.path.join(model_dir, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    n_params = n_embed = weight_bytes = 0
    dtypes = {}
    for fn in files:
        header, data_bytes = read_st_header(os.path.join(model_dir, fn))
        weight_bytes += data_bytes
        for name, t in header.items():
            if name == "__metadata__":
                continue
            n = 1
            for s in t["shape"]:
                n *= s
            n_params += n
            if name.endswith(EMBEDDING_SUFFIXES):
                n_embed += n
            dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + n
    main_dtype = max(dtypes, key=dtypes.get) if dtypes else "F32"
    return {
        "dir": os.path.abspath(model_dir),
        "name": os.path.basename(os.path.normpath(model_dir)),
        "architecture": (c.get("architectures") or [c.get("model_type", "?")])[0],
        "n_layer": pick("n_layer", "num_hidden_layers"),
        "d_model": pick("n_embd", "hidden_size", "d_model"),
        "vocab_size": pick("vocab_size"),
        "n_ctx": pick("n_positions", "max_position_embeddings", "n_ctx"),
        "n_params": n_params,
        "n_params_non_embedding": n_params - n_embed,
        "weight_bytes": weight_bytes,
        "checkpoint_dtype": ST_DTYPE_NAMES.get(main_dtype, main_dtype),
        "n_files": len(files),
    }


def lens_flops(info, T):
    """PERF.md: 2 * n_params_non_embedding * T + 2 * d_model * vocab * T * (n_layer + 1); no attention T^2 term."""
    return (2 * info["n_params_non_embedding"] * T
            + 2 * info["d_model"] * info["vocab_size"] * T * (info["n_layer"] + 1))


# ---------------------------------------------------------------------------------------------------- running


def run_once(cmd, timeout_s, env=None):
    """Run cmd (in `env`, default this process's environment); returns (wall_s, peak_rss_bytes, rc, stderr_tail,
    cpu_s). Peak RSS from wait4's ru_maxrss (KiB on Linux); cpu_s is user + system time."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        except OSError as e:
            return None, None, None, f"cannot start: {e}", None
        killed = []

        def kill():
            killed.append(True)
            p.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
        if killed:
            tail = f"killed after {timeout_s} s timeout\n" + tail
        return wall, ru.ru_maxrss * 1024, p.returncode, tail, ru.ru_utime + ru.ru_stime


def read_lens_json(path):
    """Fields of the lens JSON that the report uses (final_check, layer count, any timing block)."""
    with open(path) as f:
        doc = json.load(f)
    if isinstance(doc, list):  # one document per prompt: take the first
        doc = doc[0]
    out = {"schema_version": doc.get("schema_version"), "n_layers_reported": len(doc.get("layers", []))}
    for key in ("final_check", "timing", "timings"):
        if key in doc:
            out[key] = doc[key]
    if isinstance(doc.get("model"), dict):
        out["model_dtype"] = doc["model"].get("dtype")
    return out


def bench_one(args, info, dtype, T, rng):
    """Warm-up + repeats of one (model, dtype, T); returns a result dict (with 'error' if anything failed)."""
    res = {"model": info["name"], "model_dir": info["dir"], "dtype": dtype, "T": T, "threads": args.threads,
           "loadavg_before": os.getloadavg()}
    if T > info["n_ctx"]:
        res["error"] = f"T={T} exceeds the context length {info['n_ctx']}"
        return res
    ids = [rng.randrange(info["vocab_size"]) for _ in range(T)]
    fd, out_json = tempfile.mkstemp(prefix="lens-bench-", suffix=".json")
    os.close(fd)
    cmd = [args.lens, "run", "--model", info["dir"], "--token-ids", ",".join(map(str, ids)),
           "--threads", str(args.threads), "--dtype", dtype, "--positions", "all", "--json", "-o", out_json,
           "--timing"]
    cmd += args.lens_arg
    res["command"] = " ".join(cmd[:5]) + f" <{T} ids> " + " ".join(cmd[6:])
    walls, rsss, computes = [], [], []
    try:
        for i in range(args.warmup + args.repeats):
            if os.path.exists(out_json):
                os.unlink(out_json)
            wall, rss, rc, tail, _ = run_once(cmd, args.timeout)
            phase = "warm-up" if i < args.warmup else f"run {i - args.warmup + 1}/{args.repeats}"
            if rc != 0:
                res["error"] = f"{phase}: exit code {rc}: {tail.strip()[-1000:]}"
                log(f"  {phase}: FAILED (rc={rc})")
                break
            log(f"  {phase}: {wall:.3f} s, peak RSS {rss / 2**30:.2f} GiB")
            if i >= args.warmup:
                walls.append(wall)
                rsss.append(rss)
                try:
                    fields = read_lens_json(out_json)
                    timing = fields.get("timing") or {}
                    if all(k in timing for k in COMPUTE_STAGES):
                        computes.append(sum(timing[k] for k in COMPUTE_STAGES))
                    if i == args.warmup + args.repeats - 1:  # keep the last run's output fields
                        res.update(fields)
                except (OSError, ValueError, IndexError, KeyError) as e:
                    res["json_error"] = f"cannot read lens output {out_json}: {e}"
    finally:
        if os.path.exists(out_json):
            os.unlink(out_json)
    res["wall_s"] = walls
    res["compute_s"] = computes
    res["peak_rss_bytes"] = rsss
    if walls:
        flops = lens_flops(info, T)
        med = statistics.median(walls)
        gflops = flops / med / 1e9
        rate = args.rates.get(dtype)
        res.update({
            "wall_median_s": med,
            "wall_min_s": min(walls),
            "flops": flops,
            "gflops_per_s": gflops,
            "matmul_rate_gflops": rate,
            "fraction_of_rate": gflops / rate if rate else None,
            "peak_rss_max_bytes": max(rsss),
            "rss_over_weights": max(rsss) / info["weight_bytes"],
        })
        if computes:  # forward + lens stages from `lens run --timing`: no process start-up, loading or JSON
            cmed = statistics.median(computes)
            res.update({"compute_median_s": cmed, "compute_gflops_per_s": flops / cmed / 1e9,
                        "compute_fraction_of_rate": flops / cmed / 1e9 / rate if rate else None})
        esize = DTYPE_BYTES.get(dtype)
        if esize:  # weights converted to the run dtype (differs from the file when --dtype converts)
            res["rss_over_weights_in_run_dtype"] = max(rsss) / (info["n_params"] * esize)
    return res


# ---------------------------------------------------------------------------------------------------- matmul rate

RATE_SCRIPT = r"""
import json, sys, time, torch
threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
    a = torch.randn(2048, 2048).to(dt); b = torch.randn(2048, 2048).to(dt)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); torch.mm(a, b); times.append(time.perf_counter() - t0)
    times.sort()
    out[name] = 2 * 2048**3 / times[len(times) // 2] / 1e9
print(json.dumps(out))
"""


def measure_rate(python, threads, reps=7):
    """Median GFLOP/s of a 2048x2048 torch.mm per dtype, in /usr/bin/python3's torch (libtorch's BLAS)."""
    p = subprocess.run([python, "-c", RATE_SCRIPT, str(threads), str(reps)], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{python} matmul-rate script failed: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------- report


def fmt(v, spec, missing="-"):
    return missing if v is None else format(v, spec)


def markdown_table(results):
    lines = ["| model | dtype | T | wall median s | GFLOP/s | % of rate | compute s | compute GFLOP/s | compute % of rate "
             "| peak RSS GiB | RSS/weights | final_check |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if "wall_median_s" not in r:
            err = r.get("error", "no runs").replace("|", "/").replace("\n", " ")[:120]
            lines.append(f"| {r['model']} | {r['dtype']} | {r['T']} | FAILED: {err} | | | | | | | | |")
            continue
        fc = r.get("final_check")
        fc_s = "-" if not isinstance(fc, dict) else (
            ("ok" if fc.get("ok") else "FAIL") + (f" ({fc['max_abs_diff']:.2g})" if "max_abs_diff" in fc else ""))
        frac = r.get("fraction_of_rate")
        cfrac = r.get("compute_fraction_of_rate")
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['T']} | {r['wall_median_s']:.3f} | {r['gflops_per_s']:.1f} | "
            f"{fmt(None if frac is None else 100 * frac, '.1f')} | {fmt(r.get('compute_median_s'), '.3f')} | "
            f"{fmt(r.get('compute_gflops_per_s'), '.1f')} | {fmt(None if cfrac is None else 100 * cfrac, '.1f')} | "
            f"{r['peak_rss_max_bytes'] / 2**30:.2f} | {r['rss_over_weights']:.2f} | {fc_s} |")
    return "\n".join(lines)


def find_lens():
    for base in (os.getcwd(), REPO, "/work/main"):
        for c in LENS_CANDIDATES:
            p = os.path.join(base, c)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
    return None


def default_models():
    if not os.path.isdir(DEFAULT_MODELS_ROOT):
        return []
    return sorted(os.path.join(DEFAULT_MODELS_ROOT, d) for d in os.listdir(DEFAULT_MODELS_ROOT)
                  if os.path.exists(os.path.join(DEFAULT_MODELS_ROOT, d, "config.json")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help=f"checkpoint directories (default: all under {DEFAULT_MODELS_ROOT})")
    ap.add_argument("--lens", help="lens executable (default: first of build/bin/lens, ... that exists)")
    ap.add_argument("--dtypes", default="auto",
                    help="comma list of --dtype values for lens; 'auto' = each checkpoint's own dtype")
    ap.add_argument("--T", default="16,128,512", help="comma list of prompt lengths")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per lens run before it is killed")
    ap.add_argument("--measure-rate", action="store_true",
                    help="time a 2048x2048 torch.mm per dtype (in --python) before and after the benchmark and use "
                         "the mean of the two instead of PERF.md's rates")
    ap.add_argument("--python", default="/usr/bin/python3", help="python with torch, for --measure-rate")
    ap.add_argument("--lens-arg", action="append", default=[], help="extra argument passed to lens (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random token ids")
    ap.add_argument("--out", help="JSON result path (default bench/out/bench-<time>.json)")
    args = ap.parse_args()

    args.lens = args.lens or find_lens()
    if not args.lens:
        ap.error("no lens executable found; pass --lens PATH")
    args.lens = os.path.abspath(args.lens)
    models = args.models or default_models()
    if not models:
        ap.error(f"no model directories given and none under {DEFAULT_MODELS_ROOT}")
    Ts = [int(x) for x in args.T.split(",") if x]

    args.rates = dict(PERF_MD_RATES)
    rate_info = {"source": "PERF.md", "gflops": dict(args.rates)}
    rate_before = None
    if args.measure_rate:
        log(f"measuring 2048x2048 torch.mm rate with {args.threads} threads ...")
        rate_before = measure_rate(args.python, args.threads)
        log("  " + ", ".join(f"{k} {rate_before[k]:.0f} GFLOP/s" for k in PERF_MD_RATES))
        args.rates.update({k: rate_before[k] for k in PERF_MD_RATES})

    rng = random.Random(args.seed)
    results, infos = [], []
    for mdir in models:
        try:
            info = model_info(mdir)
        except (OSError, ValueError, KeyError) as e:
            log(f"{mdir}: cannot read checkpoint: {e}")
            results.append({"model": os.path.basename(os.path.normpath(mdir)), "model_dir": mdir, "dtype": "-",
                            "T": 0, "error": f"cannot read checkpoint: {e}"})
            continue
        infos.append(info)
        dtypes = [info["checkpoint_dtype"]] if args.dtypes == "auto" else args.dtypes.split(",")
        for dtype in dtypes:
            for T in Ts:
                log(f"{info['name']} dtype={dtype} T={T}")
                results.append(bench_one(args, info, dtype, T, rng))

    if rate_before:
        # The machine is shared: measure again at the end and divide by the mean of both measurements.
        log("measuring 2048x2048 torch.mm rate again ...")
        after = measure_rate(args.python, args.threads)
        log("  " + ", ".join(f"{k} {after[k]:.0f} GFLOP/s" for k in PERF_MD_RATES))
        args.rates.update({k: (rate_before[k] + after[k]) / 2 for k in PERF_MD_RATES})
        for r in results:
            rate = args.rates.get(r.get("dtype"))
            if "gflops_per_s" in r and rate:
                r["matmul_rate_gflops"] = rate
                r["fraction_of_rate"] = r["gflops_per_s"] / rate
                if "compute_gflops_per_s" in r:
                    r["compute_fraction_of_rate"] = r["compute_gflops_per_s"] / rate
        rate_info = {"source": f"measured ({args.python}, torch {after['torch']}, {after['threads']} threads; "
                               "mean of before and after)",
                     "gflops": {k: args.rates[k] for k in PERF_MD_RATES},
                     "before": {k: rate_before[k] for k in PERF_MD_RATES},
                     "after": {k: after[k] for k in PERF_MD_RATES}, "perf_md_gflops": PERF_MD_RATES}

    table = markdown_table(results)
    print(table)
    print(f"\nrates: {rate_info['source']}: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rate_info["gflops"].items())
          + f"; {args.threads} threads; medians of {args.repeats} runs after {args.warmup} warm-up")

    out = args.out or os.path.join(HERE, "out", datetime.datetime.now().strftime("bench-%Y%m%d-%H%M%S.json"))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    doc = {"schema_version": 1, "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "host": {"node": platform.node(), "cpus": os.cpu_count(), "machine": platform.machine()},
           "lens": args.lens, "threads": args.threads, "repeats": args.repeats, "warmup": args.warmup,
           "flops_formula": "2*n_params_non_embedding*T + 2*d_model*vocab*T*(n_layer+1)",
           "rates": rate_info, "models": infos, "results": results, "table_markdown": table}
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, out)
    log(f"wrote {out}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
