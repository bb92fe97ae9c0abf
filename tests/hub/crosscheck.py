#!/usr/bin/env python3
"""lens and Python's huggingface_hub share one Hugging Face cache (ctest hub.crosscheck).

Against tests/hub/fake_hub.py (127.0.0.1 only): (A) files `lens download` fetched are found by
hf_hub_download / snapshot_download / try_to_load_from_cache / scan_cache_dir without downloading a byte
(metadata requests only; none at all for a commit revision); (B) a snapshot huggingface_hub downloaded
runs in lens with no request at all; (C) a partial snapshot huggingface_hub left (config.json only) is
completed by lens without fetching config.json again. Exit 0 pass, 1 fail, 77 skip.

Usage: crosscheck.py --lens build/bin/lens --models-dir ../shared/models
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = "test-org/stories260K"
RUN_FILES = ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
             "tokenizer.model", "tokenizer_config.json"]
FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lens", required=True)
    ap.add_argument("--models-dir", required=True)
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.models_dir, "stories260K")):
        print("skip: no stories260K in " + args.models_dir)
        return 77
    tmp = tempfile.mkdtemp(prefix="lens_crosscheck_")
    state = os.path.join(tmp, "hub")
    hub = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_hub.py"), "--state", state,
                            "--models-dir", args.models_dir])
    try:
        for _ in range(300):
            if os.path.exists(os.path.join(state, "ports.json")):
                break
            time.sleep(0.05)
        with open(os.path.join(state, "ports.json")) as f:
            endpoint = "http://127.0.0.1:%d" % json.load(f)["hub"]
        return crosscheck(args.lens, endpoint, state, tmp)
    finally:
        hub.terminate()
        hub.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def requests(state):
    try:
        with open(os.path.join(state, "requests.jsonl")) as f:
            return [json.loads(line) for line in f]
    except OSError:
        return []


def downloads(reqs):
    """Requests that move file bytes: GETs of resolve/ URLs and of the storage host."""
    return [r for r in reqs if r["method"] == "GET" and (r["server"] == "storage" or "/resolve/" in r["path"])]


def crosscheck(lens, endpoint, state, tmp):
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    base_env.update({"HF_ENDPOINT": endpoint, "HF_HOME": os.path.join(tmp, "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
                     "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})

    def lens_cmd(cache, *argv):
        env = dict(base_env, HF_HUB_CACHE=cache)
        return subprocess.run([lens, *argv], env=env, capture_output=True, text=True)

    # huggingface_hub reads its settings at import: set them first (each step passes cache_dir).
    os.environ.clear()
    os.environ.update(base_env)
    import huggingface_hub
    from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download, try_to_load_from_cache
    print("huggingface_hub", huggingface_hub.__version__, "against", endpoint)

    # (A) lens downloads, huggingface_hub reuses.
    cache_a = os.path.join(tmp, "cache-a")
    r = lens_cmd(cache_a, "download", "-q", REPO)
    check(r.returncode == 0, "lens download exits 0 (%s)" % r.stderr.strip())
    snap = r.stdout.strip()
    commit = os.path.basename(snap)
    blobs_dir = os.path.join(cache_a, "models--test-org--stories260K", "blobs")
    blobs = sorted(os.listdir(blobs_dir))
    n = len(requests(state))
    p = hf_hub_download(REPO, "model.safetensors", revision=commit, cache_dir=cache_a)
    check(p == os.path.join(snap, "model.safetensors"), "hf_hub_download(revision=<commit>) returns lens' file")
    check(len(requests(state)) == n, "... without any request")
    p = hf_hub_download(REPO, "config.json", cache_dir=cache_a)
    check(p == os.path.join(snap, "config.json"), "hf_hub_download(revision=main) returns lens' file")
    check(not downloads(requests(state)[n:]), "... with metadata requests only, no download")
    n = len(requests(state))
    p = snapshot_download(REPO, allow_patterns=RUN_FILES, cache_dir=cache_a)
    check(p == snap, "snapshot_download returns lens' snapshot")
    check(not downloads(requests(state)[n:]), "... with metadata requests only, no download")
    check(sorted(os.listdir(blobs_dir)) == blobs, "... and adds no blob")
    check(try_to_load_from_cache(REPO, "tokenizer.model", cache_dir=cache_a) == os.path.join(snap, "tokenizer.model"),
          "try_to_load_from_cache finds lens' tokenizer.model")
    info = scan_cache_dir(cache_a)
    check(not info.warnings, "scan_cache_dir reports no problem (%s)" % info.warnings)
    repos = [x for x in info.repos if x.repo_id == REPO]
    check(len(repos) == 1 and {rev.commit_hash for rev in repos[0].revisions} == {commit},
          "scan_cache_dir sees lens' revision")

    # (B) huggingface_hub downloads, lens reuses without a single request.
    cache_b = os.path.join(tmp, "cache-b")
    p = snapshot_download(REPO, allow_patterns=RUN_FILES, cache_dir=cache_b)
    n = len(requests(state))
    r = lens_cmd(cache_b, "run", "--model", REPO, "--token-ids", "1,2,3", "--json", "-q")
    check(r.returncode == 0, "lens run on huggingface_hub's snapshot exits 0 (%s)" % r.stderr.strip())
    check(r.returncode == 0 and json.loads(r.stdout)["model"]["path"] == p, "... and uses that snapshot")
    check(len(requests(state)) == n, "... without any request")

    # (C) huggingface_hub fetched config.json alone; lens completes the snapshot, reusing that blob.
    cache_c = os.path.join(tmp, "cache-c")
    hf_hub_download(REPO, "config.json", cache_dir=cache_c)
    n = len(requests(state))
    r = lens_cmd(cache_c, "run", "--model", REPO, "--token-ids", "1,2,3", "--json", "-q")
    check(r.returncode == 0, "lens run completes a partial huggingface_hub snapshot (%s)" % r.stderr.strip())
    fetched = [x["path"] for x in downloads(requests(state)[n:])]
    check(fetched and not any(x.endswith("/config.json") for x in fetched),
          "... downloading the rest but not config.json again (%s)" % fetched)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
