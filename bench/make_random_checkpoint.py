#!/usr/bin/python3
"""Write a random-weight Hugging Face checkpoint (config.json + safetensors) with a real model's config.

For benchmarks only: speed and memory do not depend on the weight values, so a checkpoint with the real
shapes of GPT-2 small, TinyLlama-1.1B or Llama-2-7B measures them as well as the real weights do.
It does not download anything and writes no tokenizer (run `lens` with --token-ids).

Values: N(0, 0.02) for matrices, embeddings and biases, 1.0 for norm weights, 0.0 for norm biases. To write
13 GB quickly, one random block is generated once and each tensor is a window of it at a tensor-specific offset,
sign-flipped for every other tensor; the values are random-looking, finite and non-zero, but not independent.

The safetensors format is written directly with numpy (8-byte little-endian header length, JSON header padded
with spaces to 8-byte alignment, raw little-endian data), streaming tensor by tensor so memory stays ~100 MB.
Checkpoints above --max-shard-gb are sharded as transformers' save_pretrained does
(model-0000i-of-0000n.safetensors + model.safetensors.index.json).

Usage: /usr/bin/python3 bench/make_random_checkpoint.py gpt2 llama-1b --dtype bfloat16 [--out-root DIR]
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

# Real configs as published on the Hugging Face Hub (torch_dtype is replaced by --dtype).
CONFIGS = {
    # openai-community/gpt2 (GPT-2 small, 124M)
    "gpt2": {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": 1024,
        "n_embd": 768,
        "n_head": 12,
        "n_inner": None,
        "n_layer": 12,
        "n_positions": 1024,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257,
    },
    # Not a released model: the 32 layers x 32 heads of Llama-2-7B with a narrow width, for the
    # attention-view benchmark (1,000 tokens, every layer and head captured) at a small size.
    "llama-32x32-narrow": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 512,
        "intermediate_size": 1024,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 1000,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    },
    # TinyLlama/TinyLlama-1.1B-Chat-v1.0
    "llama-1b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 5632,
        "max_position_embeddings": 2048,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 22,
        "num_key_value_heads": 4,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "use_cache": True,
        "vocab_size": 32000,
    },
    # meta-llama/Llama-2-7b-hf
    "llama2-7b": {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 11008,
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "use_cache": True,
        "vocab_size": 32000,
    },
}

STD = 0.02
BLOCK = (1 << 24) + 4099  # random block length in elements (not a power of two, so rows of a tensor differ)
CHUNK = 1 << 22           # elements per write when filling constant tensors
DTYPES = {"float32": ("F32", 4), "bfloat16": ("BF16", 2)}


def gpt2_tensors(c):
    """(name, shape, kind) in GPT2LMHeadModel order; Conv1D weights are (in, out); head tied (no lm_head)."""
    d, v, n_pos, f = c["n_embd"], c["vocab_size"], c["n_positions"], c.get("n_inner") or 4 * c["n_embd"]
    t = [("transformer.wte.weight", (v, d), "rand"), ("transformer.wpe.weight", (n_pos, d), "rand")]
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        t += [
            (p + "ln_1.weight", (d,), "ones"), (p + "ln_1.bias", (d,), "zeros"),
            (p + "attn.c_attn.weight", (d, 3 * d), "rand"), (p + "attn.c_attn.bias", (3 * d,), "rand"),
            (p + "attn.c_proj.weight", (d, d), "rand"), (p + "attn.c_proj.bias", (d,), "rand"),
            (p + "ln_2.weight", (d,), "ones"), (p + "ln_2.bias", (d,), "zeros"),
            (p + "mlp.c_fc.weight", (d, f), "rand"), (p + "mlp.c_fc.bias", (f,), "rand"),
            (p + "mlp.c_proj.weight", (f, d), "rand"), (p + "mlp.c_proj.bias", (d,), "rand"),
        ]
    t += [("transformer.ln_f.weight", (d,), "ones"), ("transformer.ln_f.bias", (d,), "zeros")]
    return t


def llama_tensors(c):
    """(name, shape, kind) in LlamaForCausalLM order; nn.Linear weights are (out, in)."""
    d, v, f = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    n_head = c["num_attention_heads"]
    d_head = c.get("head_dim") or d // n_head
    d_kv = c.get("num_key_value_heads", n_head) * d_head
    t = [("model.embed_tokens.weight", (v, d), "rand")]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t += [
            (p + "input_layernorm.weight", (d,), "ones"),
            (p + "self_attn.q_proj.weight", (n_head * d_head, d), "rand"),
            (p + "self_attn.k_proj.weight", (d_kv, d), "rand"),
            (p + "self_attn.v_proj.weight", (d_kv, d), "rand"),
            (p + "self_attn.o_proj.weight", (d, n_head * d_head), "rand"),
            (p + "post_attention_layernorm.weight", (d,), "ones"),
            (p + "mlp.gate_proj.weight", (f, d), "rand"),
            (p + "mlp.up_proj.weight", (f, d), "rand"),
            (p + "mlp.down_proj.weight", (d, f), "rand"),
        ]
    t.append(("model.norm.weight", (d,), "ones"))
    if not c.get("tie_word_embeddings", False):
        t.append(("lm_head.weight", (v, d), "rand"))
    return t


def tensors_for(config):
    return gpt2_tensors(config) if config["model_type"] == "gpt2" else llama_tensors(config)


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class Source:
    """Pre-made blocks of values, already encoded in the output dtype, to slice tensors from without copies."""

    def __init__(self, dtype, seed):
        rng = np.random.default_rng(seed)
        block = rng.standard_normal(BLOCK, dtype=np.float32)
        block *= np.float32(STD)
        if not np.isfinite(block).all() or not block.any():
            raise RuntimeError("random block is not finite / all zero")
        ones = np.ones(CHUNK, dtype=np.float32)
        if dtype == "bfloat16":
            # bf16 = top 16 bits of the float32 (truncation), little-endian uint16.
            enc = lambda a: (a.view(np.uint32) >> 16).astype(np.uint16)
        else:
            enc = lambda a: a
        self.pos = enc(block)
        self.neg = enc(-block)
        self.ones = enc(ones)
        self.zeros = np.zeros_like(self.ones)
        del block

    def write(self, f, kind, n, index):
        """Write n elements of the given kind for the index-th tensor; returns nothing."""
        if kind in ("ones", "zeros"):
            src = self.ones if kind == "ones" else self.zeros
            while n > 0:
                k = min(n, len(src))
                f.write(memoryview(src[:k]))
                n -= k
            return
        src = self.neg if index % 2 else self.pos
        off = (index * 7919 * 1021) % BLOCK  # tensor-specific start in the block
        while n > 0:
            k = min(n, BLOCK - off)
            f.write(memoryview(src[off:off + k]))
            n -= k
            off = 0


def plan_shards(tensors, esize, max_shard_bytes):
    """Split tensors (in order) into shards of at most max_shard_bytes, like transformers' shard_checkpoint."""
    shards, cur, cur_bytes = [], [], 0
    for t in tensors:
        b = numel(t[1]) * esize
        if cur and cur_bytes + b > max_shard_bytes:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(t)
        cur_bytes += b
    if cur:
        shards.append(cur)
    return shards


def write_safetensors(path, tensors, dtype, source, first_index):
    st_dtype, esize = DTYPES[dtype]
    header, off = {}, 0
    for name, shape, _ in tensors:
        b = numel(shape) * esize
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [off, off + b]}
        off += b
    header["__metadata__"] = {"format": "pt"}
    hs = json.dumps(header, separators=(",", ":")).encode()
    hs += b" " * ((8 - (8 + len(hs)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb", buffering=0) as f:
        f.write(len(hs).to_bytes(8, "little"))
        f.write(hs)
        for i, (name, shape, kind) in enumerate(tensors):
            source.write(f, kind, numel(shape), first_index + i)
        if f.tell() != 8 + len(hs) + off:
            raise RuntimeError(f"{path}: wrote {f.tell()} bytes, expected {8 + len(hs) + off}")
    os.replace(tmp, path)
    return off


def make_checkpoint(name, dtype, out_dir, max_shard_bytes, seed):
    config = dict(CONFIGS[name])
    config["torch_dtype"] = dtype
    tensors = tensors_for(config)
    esize = DTYPES[dtype][1]
    total = sum(numel(s) * esize for _, s, _ in tensors)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    free = shutil.disk_usage(out_dir).free
    if free < total + (1 << 30):
        raise SystemExit(f"error: {out_dir}: needs {total / 1e9:.1f} GB, only {free / 1e9:.1f} GB free")
    source = Source(dtype, seed)
    shards = plan_shards(tensors, esize, max_shard_bytes)
    if len(shards) == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype, source, 0)
    else:
        weight_map, index = {}, 0
        for i, shard in enumerate(shards):
            fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            write_safetensors(os.path.join(out_dir, fname), shard, dtype, source, index)
            index += len(shard)
            for t in shard:
                weight_map[t[0]] = fname
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
            f.write("\n")
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    n_params = total // esize
    return n_params, total, len(shards)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", choices=sorted(CONFIGS), help="configs to write")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    ap.add_argument("--out-root", default="/work/bench-models", help="checkpoints go to OUT_ROOT/<name>-<dtype>/")
    ap.add_argument("--max-shard-gb", type=float, default=4.0, help="shard above this many GB (1e9 bytes)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name in args.models:
        out_dir = os.path.join(args.out_root, f"{name}-{args.dtype}")
        t0 = time.time()
        n_params, total, n_shards = make_checkpoint(name, args.dtype, out_dir, int(args.max_shard_gb * 1e9), args.seed)
        dt = time.time() - t0
        print(f"{out_dir}: {n_params / 1e6:.1f}M params, {total / 1e9:.2f} GB in {n_shards} file(s), "
              f"{dt:.1f} s ({total / 1e6 / max(dt, 1e-9):.0f} MB/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
