#!/usr/bin/env python3
"""A test Hugging Face Hub on 127.0.0.1 (standard library only), for tests/cli/test_download.cpp and
tests/hub/crosscheck.py. It speaks the part of the Hub API that lens and huggingface_hub use to download
(GET /api/models/<repo>/revision/<rev>, GET /api/models/<repo>/tree/<rev>, HEAD/GET
/<repo>/resolve/<rev>/<file>) and serves LFS files from a second "storage" port it redirects to, with
ETags and Range. It is not a Hub: no uploads, no search, no datasets, no Xet.

Repos (from --models-dir, default ../shared/models next to the repository):
  test-org/stories260K        stories260K, plus a pytorch_model.bin duplicate lens must never fetch
  test-org/gated-stories260K  the same, answering 401 (X-Error-Code: GatedRepo) without "Bearer <token>"
  test-org/bin-only           config.json + pytorch_model.bin only
  test-org/stories260K-sharded  the same weights split in two shards + model.safetensors.index.json
Revisions: "main", the tag "v1.0" and the commit sha all name the one commit.

Usage: fake_hub.py --state DIR. Writes DIR/ports.json ({"hub": port, "storage": port, "pid": pid})
once listening, appends one JSON line per request to DIR/requests.jsonl, and re-reads DIR/config.json
on every request: {"drop_after": BYTES, "drop_count": N} makes the next N storage GETs of more than BYTES
bytes send the full Content-Length but hang up after BYTES bytes; {"missing_files": [...]} answers 404
EntryNotFound for files the listing still names; {"corrupt": true} flips a byte of every LFS file it serves
(a wrong-hash mode); {"throttle_bps": B} sends storage bodies at about B bytes/s
(time to press Ctrl-C); {"token": "..."} is the token the gated repo accepts (default hf_test_token).
Exits when its parent process does.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = None
LOG_LOCK = threading.Lock()
DROPS_DONE = [0]
REPOS = {}
PORTS = {}


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def make_repo(files, gated=False):
    entries = {}
    for name, data in files.items():
        lfs = name.endswith((".safetensors", ".model", ".bin")) or len(data) > 10000
        entries[name] = {
            "data": data,
            "size": len(data),
            "git": git_blob_sha1(data),
            "sha256": hashlib.sha256(data).hexdigest() if lfs else None,
        }
    commit = hashlib.sha1("".join(n + e["git"] for n, e in sorted(entries.items())).encode()).hexdigest()
    return {"files": entries, "commit": commit, "gated": gated}


def shard_safetensors(data, n_shards=2):
    """Splits a safetensors file into n_shards files plus the index transformers writes."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    names = sorted(header)
    out, weight_map = {}, {}
    for k in range(n_shards):
        shard = "model-%05d-of-%05d.safetensors" % (k + 1, n_shards)
        part, blob, off = {}, b"", 0
        for name in names[k::n_shards]:
            b, e = header[name]["data_offsets"]
            part[name] = dict(header[name], data_offsets=[off, off + e - b])
            blob += data[8 + n + b:8 + n + e]
            off += e - b
            weight_map[name] = shard
        if meta:
            part["__metadata__"] = meta
        h = json.dumps(part).encode()
        h += b" " * (-len(h) % 8)
        out[shard] = len(h).to_bytes(8, "little") + h + blob
    index = {"metadata": {"total_size": sum(len(v) for v in out.values())}, "weight_map": weight_map}
    out["model.safetensors.index.json"] = json.dumps(index, indent=2).encode()
    return out


def load_repos(models_dir):
    src = os.path.join(models_dir, "stories260K")
    files = {}
    for name in sorted(os.listdir(src)):
        with open(os.path.join(src, name), "rb") as f:
            files[name] = f.read()
    files["pytorch_model.bin"] = b"PK\x03\x04 not a real pickle; lens must never fetch it\n" * 64
    files["README.md"] = b"# stories260K (test copy)\n"
    REPOS["test-org/stories260K"] = make_repo(files)
    REPOS["test-org/gated-stories260K"] = make_repo(files, gated=True)
    sharded = {k: v for k, v in files.items() if k not in ("model.safetensors", "pytorch_model.bin")}
    sharded.update(shard_safetensors(files["model.safetensors"]))
    REPOS["test-org/stories260K-sharded"] = make_repo(sharded)
    REPOS["test-org/bin-only"] = make_repo(
        {"config.json": files["config.json"], "pytorch_model.bin": files["pytorch_model.bin"]})


def config():
    try:
        with open(os.path.join(STATE, "config.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def log_request(server, handler):
    rec = {"server": server, "method": handler.command, "path": handler.path,
           "auth": handler.headers.get("Authorization") is not None, "range": handler.headers.get("Range")}
    with LOG_LOCK, open(os.path.join(STATE, "requests.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_tag = "hub"

    def log_message(self, *args):  # quiet: the requests log is DIR/requests.jsonl
        pass

    def reply(self, status, headers=None, body=b""):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, code, message, extra=None):
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        headers.update(extra or {})
        self.reply(status, headers, json.dumps({"error": message}).encode())

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def handle_any(self):
        log_request(self.server_name_tag, self)
        try:
            if self.server_name_tag == "storage":
                self.storage()
            else:
                self.hub()
        except (BrokenPipeError, ConnectionResetError):
            pass

    # Hub side ------------------------------------------------------------------------------
    def repo_and_rev(self, repo_id, rev):
        repo = REPOS.get(repo_id)
        if repo is None:
            self.error(404, "RepoNotFound", "Repository not found")
            return None, None
        if repo["gated"]:
            token = config().get("token", "hf_test_token")
            if self.headers.get("Authorization") != "Bearer " + token:
                self.error(401, "GatedRepo", "Access to model %s is restricted. You must have access to it and be "
                           "authenticated to access it. Please log in." % repo_id)
                return None, None
        if rev not in ("main", "v1.0", repo["commit"]):
            self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
            return None, None
        return repo, repo["commit"]

    def hub(self):
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] in ("revision", "tree"):
            repo_id = parts[2] + "/" + parts[3]
            repo, commit = self.repo_and_rev(repo_id, parts[5])
            if repo is None:
                return
            if parts[4] == "revision":
                body = {"_id": commit[:24], "id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                        "gated": "manual" if repo["gated"] else False, "disabled": False, "downloads": 0,
                        "likes": 0, "tags": [], "lastModified": "2024-01-01T00:00:00.000Z",
                        "siblings": [{"rfilename": n} for n in sorted(repo["files"])]}
            else:
                body = []
                for n, e in sorted(repo["files"].items()):
                    item = {"type": "file", "oid": e["git"], "size": e["size"], "path": n}
                    if e["sha256"]:
                        item["lfs"] = {"oid": e["sha256"], "size": e["size"], "pointerSize": 134}
                    body.append(item)
            self.reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id = parts[0] + "/" + parts[1]
            repo, commit = self.repo_and_rev(repo_id, parts[3])
            if repo is None:
                return
            name = "/".join(parts[4:])
            e = repo["files"].get(name)
            if e is None or name in config().get("missing_files", []):
                self.error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
                return
            if e["sha256"]:
                location = "http://127.0.0.1:%d/blobs/%s" % (PORTS["storage"], e["sha256"])
                self.reply(302, {"Location": location, "X-Repo-Commit": commit, "ETag": '"%s"' % e["sha256"],
                                 "X-Linked-Etag": '"%s"' % e["sha256"], "X-Linked-Size": e["size"]})
            else:
                self.reply(200, {"X-Repo-Commit": commit, "ETag": '"%s"' % e["git"], "Accept-Ranges": "bytes",
                                 "Content-Type": "application/octet-stream"}, e["data"])
            return
        self.error(404, "NotFound", "no such endpoint: " + url.path)

    # Storage side --------------------------------------------------------------------------
    def storage(self):
        if self.headers.get("Authorization") is not None:
            # A storage host must never see the Hub token (tests count these requests too).
            self.reply(400, {"X-Error-Message": "Authorization header sent to the storage host"})
            return
        sha = self.path.split("?")[0].rsplit("/", 1)[-1]
        data = None
        for repo in REPOS.values():
            for e in repo["files"].values():
                if e["sha256"] == sha:
                    data = e["data"]
        if data is None:
            self.reply(404)
            return
        cfg = config()
        if cfg.get("corrupt"):
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        start, status, headers = 0, 200, {"ETag": '"%s"' % sha, "Accept-Ranges": "bytes",
                                          "Content-Type": "application/octet-stream"}
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.reply(416, {"Content-Range": "bytes */%d" % len(data)})
                return
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        drop_after = int(cfg.get("drop_after", 0))
        drop = self.command == "GET" and len(body) > drop_after and DROPS_DONE[0] < int(cfg.get("drop_count", 0))
        if not drop:
            bps = int(cfg.get("throttle_bps", 0))
            if not bps or self.command != "GET":
                self.reply(status, headers, body)
                return
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 16384):
                self.wfile.write(body[i:i + 16384])
                self.wfile.flush()
                time.sleep(16384 / bps)
            return
        DROPS_DONE[0] += 1
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:drop_after])
        self.wfile.flush()
        time.sleep(0.05)
        self.close_connection = True  # hang up mid-file


class StorageHandler(Handler):
    server_name_tag = "storage"


def main():
    global STATE
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", required=True)
    ap.add_argument("--models-dir", default=os.path.join(here, "..", "..", "..", "shared", "models"))
    args = ap.parse_args()
    STATE = args.state
    os.makedirs(STATE, exist_ok=True)
    load_repos(args.models_dir)
    hub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    storage = ThreadingHTTPServer(("127.0.0.1", 0), StorageHandler)
    hub.daemon_threads = storage.daemon_threads = True
    PORTS["hub"], PORTS["storage"] = hub.server_address[1], storage.server_address[1]
    for s in (hub, storage):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    tmp = os.path.join(STATE, "ports.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"hub": PORTS["hub"], "storage": PORTS["storage"], "pid": os.getpid()}, f)
    os.replace(tmp, os.path.join(STATE, "ports.json"))
    parent = os.getppid()
    while os.getppid() == parent:  # the test that started us is gone: so are we
        time.sleep(0.5)
    sys.exit(0)


if __name__ == "__main__":
    main()
