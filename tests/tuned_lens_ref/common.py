# Shared pieces of the tuned-lens reference scripts: paths, the deterministic TinyStories train / held-out split,
# tokenisation + packing through the package's own chunk_and_tokenize, a torchdata stand-in with a fixed batch
# order, and the per-layer held-out metrics (same formulas as tuned_lens/scripts/eval_loop.py, in nats/token).
# Reference tooling only: the lens product and its tests never run Python.

import hashlib
import json
import os
import sys
import types

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("LENS_SHARED_DIR", "/work/shared")
MODEL_PARENT = os.path.join(SHARED, "models")
MODEL_NAME = "stories260K"  # loaded with cwd = MODEL_PARENT so config.json records a portable name
MODEL_DIR = os.path.join(MODEL_PARENT, MODEL_NAME)
CORPUS = os.path.join(SHARED, "corpus", "tinystories", "tinystories_train_first2MiB.complete.txt")
CORPUS_SHA256 = "ba02237f5747a07d420cb7329f721fdc51b6f5c35a81788b9c4bb871e15ff30a"
FIXTURE_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "tuned-lens")
LENS_DIR = os.path.join(FIXTURE_DIR, "stories260K-py")
REF_JSON = os.path.join(FIXTURE_DIR, "stories260K-ref.json")

# The split (story indices after splitting the corpus on "<|endoftext|>", stripping, dropping empties).
N_TRAIN_STORIES = 2048  # stories [0, 2048): one datasets.map batch (batch_size=2048) => one leading BOS
HELDOUT_FIRST_STORY = 2048  # stories [2048, 2316) are held out; their first N_EVAL_CHUNKS chunks are the eval set
SEQ_LEN = 256  # Data.max_length; the tokenizer's model_max_length is 512, chunk_size = min(512, 256)
N_EVAL_CHUNKS = 16  # 16 x 256 = 4096 held-out tokens
SEED = 42
THREADS = 2

# Training config (package defaults except num_steps / tokens_per_step / per_gpu_batch_size, see README.md).
# Sized for this CPU: Debian's torch 1.13 runs stories260K + lens at only ~1-3k training tokens/s on 2 threads.
NUM_STEPS = 50
TOKENS_PER_STEP = 4096  # 16 chunks of 256 -> grad_acc_steps = 2 with per_gpu_batch_size 8
BATCH_SIZE = 8


def load_stories():
    with open(CORPUS, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CORPUS_SHA256:
        sys.exit(f"error: {CORPUS}: sha256 {digest} != expected {CORPUS_SHA256}")
    stories = [s.strip() for s in raw.decode("utf-8").split("<|endoftext|>")]
    return [s for s in stories if s]


def install_import_stubs():
    """Stubs for the two imports of tuned_lens.scripts that cannot load here; neither is used on one CPU process."""
    install_fsdp_stub()
    install_torchdata_stub()


def install_fsdp_stub():
    """Debian's torch 1.13 torch.distributed.fsdp fails to import on Python 3.11 (a dataclass with a mutable
    default in torch/distributed/_shard/sharded_tensor/metadata.py). The package imports FSDP names at module level
    but only uses them with --fsdp, which a single CPU process never sets."""
    try:
        import torch.distributed.fsdp  # noqa: F401
        import torch.distributed.fsdp.wrap  # noqa: F401
        return
    except Exception:
        pass
    fsdp = types.ModuleType("torch.distributed.fsdp")
    wrap = types.ModuleType("torch.distributed.fsdp.wrap")

    class _Unavailable:
        def __init__(self, *a, **k):
            raise RuntimeError("FSDP is unavailable with torch 1.13 on Python 3.11")

    fsdp.FullyShardedDataParallel = fsdp.CPUOffload = fsdp.MixedPrecision = _Unavailable
    fsdp.wrap = wrap
    wrap.transformer_auto_wrap_policy = _Unavailable
    for name in list(sys.modules):
        if name.startswith("torch.distributed.fsdp") or name.startswith("torch.distributed._shard"):
            sys.modules.pop(name)
    sys.modules.update({"torch.distributed.fsdp": fsdp, "torch.distributed.fsdp.wrap": wrap})


def install_torchdata_stub():
    """tuned_lens.scripts.{ingredients,train_loop} import torchdata at module level, but torchdata >= 0.6 (the
    versions with Python 3.11 wheels) needs torch 2.0. The only torchdata use is Distributed.data_loader, which
    we replace with InOrderLoader anyway, so a stub module suffices."""
    try:
        import torchdata.dataloader2  # noqa: F401
        return
    except Exception:
        pass
    for name in ["torchdata", "torchdata.dataloader2", "torchdata.datapipes"]:
        sys.modules.pop(name, None)
    td = types.ModuleType("torchdata")
    dl2 = types.ModuleType("torchdata.dataloader2")
    dp = types.ModuleType("torchdata.datapipes")
    dl2.DataLoader2 = InOrderLoader
    td.dataloader2, td.datapipes = dl2, dp
    sys.modules.update({"torchdata": td, "torchdata.dataloader2": dl2, "torchdata.datapipes": dp})


class InOrderLoader:
    """Stand-in for the package's DataLoader2(IterableWrapper(ds).shuffle().sharding_filter().batch(b).collate()):
    the same {"input_ids": (b, seq_len) int64} batches, but in dataset order (no shuffle), so another
    implementation can reproduce the exact token stream. Batch k = chunks [k*b, (k+1)*b); a short last batch is
    dropped. Records wall-clock times at which batches were handed out (for the benchmark)."""

    def __init__(self, dataset, batch_size):
        self.dataset = dataset
        self.batch_size = batch_size
        self.fetch_times = []

    def seed(self, seed):
        del seed  # order is fixed

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        del state

    def __iter__(self):
        import time

        ids = self.dataset["input_ids"]  # (n_chunks, seq_len) torch tensor (with_format("torch"))
        for k in range(len(ids) // self.batch_size):
            self.fetch_times.append(time.perf_counter())
            yield {"input_ids": ids[k * self.batch_size : (k + 1) * self.batch_size]}


def patch_data_loader(batch_size_hint=None):
    """Make ing.Distributed.data_loader return an InOrderLoader; returns a list that collects the loaders."""
    install_import_stubs()
    import tuned_lens.scripts.ingredients as ing

    made = []

    def data_loader(self, dataset):
        loader = InOrderLoader(dataset, batch_size_hint or self.per_gpu_batch_size)
        made.append(loader)
        return loader

    ing.Distributed.data_loader = data_loader
    return made


def write_jsonl(stories, path):
    with open(path, "w", encoding="utf-8") as f:
        for s in stories:
            f.write(json.dumps({"text": s}) + "\n")


def load_model_and_tokenizer():
    """The package's own ing.Model.load (AutoModelForCausalLM, eval, requires_grad False; slow LlamaTokenizer)."""
    import torch

    install_import_stubs()
    import tuned_lens.scripts.ingredients as ing

    cwd = os.getcwd()
    os.chdir(MODEL_PARENT)
    try:
        model, tok = ing.Model(name=MODEL_NAME, slow_tokenizer=True).load(torch.device("cpu"))
    finally:
        os.chdir(cwd)
    return model, tok


def tokenize_chunks(stories, tokenizer, with_ratio=False):
    """The package's chunk_and_tokenize on a datasets.Dataset of {"text": story}: returns (n_chunks, SEQ_LEN)
    (and the package's nats_to_bpb ratio if with_ratio)."""
    from datasets import Dataset
    from tuned_lens.data import chunk_and_tokenize

    ds = Dataset.from_dict({"text": stories})
    chunks, nats_to_bpb = chunk_and_tokenize(ds, tokenizer, max_length=SEQ_LEN, load_from_cache_file=False)
    return (chunks["input_ids"], nats_to_bpb) if with_ratio else chunks["input_ids"]


def simple_recipe(stories, sp_model_path, seq_len=SEQ_LEN):
    """The packing rule written out without transformers (to document it and check it): per datasets.map batch of
    <= 2048 stories, ids = [BOS] + concat([EOS] + sp.encode(story)), cut into seq_len chunks, last partial dropped."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    out = []
    for b in range(0, len(stories), 2048):
        ids = [sp.bos_id()]
        for s in stories[b : b + 2048]:
            ids += [sp.eos_id()] + sp.encode(s)
        n = len(ids) // seq_len
        if len(ids) % seq_len == 0:
            n -= 1  # chunk_and_tokenize always drops the last chunk, even a full one
        out += [ids[i * seq_len : (i + 1) * seq_len] for i in range(n)]
    return out


def layer_metrics(model, lenses, input_ids):
    """Held-out metrics per lens and layer, nats/token, float32, no autocast. Same formulas as
    tuned_lens/scripts/eval_loop.py (_evaluate_lenses_on_hidden), without its nats_to_bpb scaling:
      kl[i]      = mean_{b,t} sum_v p_final * (log p_final - log q_i)            (all T positions)
      ce[i]      = mean_{b,t<T-1} -log q_i(x_{t+1})                                (token_shift 1)
      entropy[i] = mean_{b,t} -sum_v q_i log q_i                                   (all T positions)
    layer i = 0..L-1 acts on output.hidden_states[i] (0 = embeddings, i = input of block i); the baseline is the
    model's own final distribution. Chunks are processed one at a time and averaged (all equal length)."""
    import torch

    import torch.nn.functional as F

    L = model.config.num_hidden_layers
    acc = {name: {m: [0.0] * L for m in ("kl", "ce", "entropy")} for name in lenses}
    base = {"ce": 0.0, "entropy": 0.0}
    n = input_ids.shape[0]
    with torch.no_grad():
        for c in range(n):
            x = input_ids[c : c + 1]
            out = model(input_ids=x, output_hidden_states=True)
            final_lps = out.logits.float().log_softmax(-1)
            final_p = final_lps.exp()
            labels = x[:, 1:]
            base["ce"] += F.cross_entropy(final_lps[:, :-1].flatten(0, 1), labels.flatten()).item() / n
            base["entropy"] += (-(final_p * final_lps).sum(-1)).mean().item() / n
            for i, h in enumerate(out.hidden_states[:-1]):
                for name, lens in lenses.items():
                    lps = lens(h, idx=i).float().log_softmax(-1)
                    p = lps.exp()
                    acc[name]["kl"][i] += (final_p * (final_lps - lps)).sum(-1).mean().item() / n
                    acc[name]["ce"][i] += F.cross_entropy(lps[:, :-1].flatten(0, 1), labels.flatten()).item() / n
                    acc[name]["entropy"][i] += (-(p * lps).sum(-1)).mean().item() / n
    acc["final"] = base
    return acc


def load_lenses(model, lens_dir):
    from tuned_lens.nn.lenses import LogitLens, TunedLens

    lenses = {"logit": LogitLens.from_model(model)}
    if lens_dir is not None:
        lenses["tuned"] = TunedLens.from_model_and_pretrained(model, os.path.abspath(lens_dir))
    for lens in lenses.values():
        lens.eval()
    return lenses


def ids_sha256(rows):
    """sha256 over the ids as little-endian int32, row-major: lets another implementation check its token stream."""
    import struct

    h = hashlib.sha256()
    for row in rows:
        h.update(struct.pack(f"<{len(row)}i", *[int(t) for t in row]))
    return h.hexdigest()


def round_list(t, digits=7):
    if t.dim() == 0:
        return float(f"{t.item():.{digits}g}")
    return [round_list(x, digits) for x in t]


N_FIXED = 8  # tokens of the fixed input whose tuned-lens outputs are recorded (first 8 of held-out chunk 0)


def heldout_chunks(tokenizer, stories=None, check_recipe=True):
    """All held-out chunks (package packing of stories [2048, 2316)), checked against simple_recipe()."""
    stories = stories if stories is not None else load_stories()
    chunks = tokenize_chunks(stories[HELDOUT_FIRST_STORY:], tokenizer)
    if check_recipe:
        recipe = simple_recipe(stories[HELDOUT_FIRST_STORY:], os.path.join(MODEL_DIR, "tokenizer.model"))
        if recipe != chunks.tolist():
            sys.exit("error: simple_recipe() does not reproduce chunk_and_tokenize on the held-out stories")
    return chunks


def fixed_outputs(model, lens, ids):
    """Per layer i: lens.transform_hidden(h_i) (T, d) and lens(h_i) logits (T, vocab) for one (1, T) input."""
    import torch

    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        hs = out.hidden_states[:-1]
        hidden = [lens.transform_hidden(h, i)[0] for i, h in enumerate(hs)]
        logits = [lens(h, idx=i)[0] for i, h in enumerate(hs)]
    return hidden, logits
