# Builds tiny random models (GPT-2, LLaMA, Llama 3 rope scaling, GPT-NeoX, Mistral, Qwen2, Gemma) with Hugging Face transformers, saves them as safetensors checkpoints
# under tests/fixtures/<name>/, and records reference activations (embed, resid_post per block, ln_final, logits,
# attention patterns) in reference.json for the C++ parity tests. Deterministic: fixed seeds, float32, eager
# attention, CPU only. Reference tooling only; the lens product and its tests never run Python.
# Usage: tests/parity/setup_env.sh && .venv-ref/bin/python tests/parity/make_fixtures.py [fixture names...]
# (no names: all fixtures).

import copy
import json
import math
import os
import shutil
import sys

import torch
import transformers
from transformers import (
    GemmaConfig,
    GemmaForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")

SEQ_LEN = 11
WEIGHT_STD = 0.2  # larger than HF's 0.02 so every layer visibly changes the residual stream
BIAS_STD = 0.1
NORM_JITTER = 0.1  # norm gains are 1 + U(-0.1, 0.1)
SIG_DIGITS = 9  # 9 significant digits round-trip float32 exactly
TOL = 1e-5  # self-check tolerance (absolute), float32 arithmetic
MAX_FILE_BYTES = 1 << 20


def init_weights(model, seed):
    """Re-initialise every parameter: norm gains around 1, biases and weights normal with a large std."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied parameters are listed once
            is_norm = "ln_" in name or "norm" in name
            if is_norm and name.endswith(".weight"):
                p.copy_(1.0 + NORM_JITTER * (2.0 * torch.rand(p.shape, generator=g) - 1.0))
            elif name.endswith(".bias"):
                p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
            else:
                p.copy_(WEIGHT_STD * torch.randn(p.shape, generator=g))


def to_list(t):
    """Tensor -> nested lists of Python floats rounded to SIG_DIGITS significant digits."""
    if t.dim() == 0:
        return float(f"{t.item():.{SIG_DIGITS}g}")
    return [to_list(x) for x in t]


def save_checkpoint(model, out_dir):
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    gen = os.path.join(out_dir, "generation_config.json")  # not needed by lens; keep the fixture minimal
    if os.path.exists(gen):
        os.remove(gen)


def run_reference(model, blocks, final_norm, input_ids):
    """Forward pass with hooks on each block (its output = resid_post) and on the final norm."""
    captured = {"resid_post": [None] * len(blocks), "ln_final": None}

    def block_hook(idx):
        def hook(_module, _inputs, output):
            hs = output[0] if isinstance(output, tuple) else output
            captured["resid_post"][idx] = hs.detach().clone()

        return hook

    def norm_hook(_module, _inputs, output):
        captured["ln_final"] = output.detach().clone()

    handles = [b.register_forward_hook(block_hook(i)) for i, b in enumerate(blocks)]
    handles.append(final_norm.register_forward_hook(norm_hook))
    try:
        with torch.no_grad():
            out = model(
                torch.tensor([input_ids]),
                output_hidden_states=True,
                output_attentions=True,
                use_cache=False,
            )
    finally:
        for h in handles:
            h.remove()

    return {
        "embed": out.hidden_states[0][0],  # (T, d): input to block 0
        "hidden_states": [h[0] for h in out.hidden_states],  # used only for self-checks
        "resid_post": [r[0] for r in captured["resid_post"]],  # n_layer x (T, d)
        "ln_final": captured["ln_final"][0],  # (T, d)
        "logits": out.logits[0],  # (T, V)
        "attentions": torch.stack([a[0] for a in out.attentions]),  # (n_layer, n_head, T, T)
    }


def max_diff(a, b):
    return (a.double() - b.double()).abs().max().item()


def self_check(name, ref, stored, final_norm, lm_head):
    """Checks the fixture as stored (rounded JSON values) is internally consistent; returns the max diffs."""
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in stored.items() if k in ("logits", "ln_final", "embed")}
    resid = torch.tensor(stored["resid_post"], dtype=torch.float32)  # (n_layer, T, d)
    attn = torch.tensor(stored["attentions"], dtype=torch.float32)  # (n_layer, n_head, T, T)
    with torch.no_grad():
        diffs = {
            "logits_vs_ln_final_matmul_lm_head": max_diff(t["ln_final"] @ lm_head.weight.T, t["logits"]),
            "final_norm_of_last_resid_post_vs_ln_final": max_diff(final_norm(resid[-1]), t["ln_final"]),
            "embed_vs_hidden_states_0": max_diff(t["embed"], ref["hidden_states"][0]),
            # HF's hidden_states[l + 1] is block l's output except for the last block (already final-normed).
            "resid_post_vs_hidden_states_l_plus_1": max(
                max_diff(resid[l], ref["hidden_states"][l + 1]) for l in range(resid.shape[0] - 1)
            ),
            "attention_rows_sum_to_1": max_diff(attn.sum(-1), torch.ones(attn.shape[:-1])),
            "attention_upper_triangle_is_0": attn.triu(1).abs().max().item(),
        }
    # A final-normed last hidden state must NOT equal the raw block output; otherwise the hook captured the wrong thing.
    last_gap = max_diff(resid[-1], ref["hidden_states"][-1])
    print(f"[{name}] self-check max |diff| (tolerance {TOL:g}):", file=sys.stderr)
    for k, v in diffs.items():
        print(f"  {k:45s} {v:.3e}", file=sys.stderr)
        assert v <= TOL, f"{name}: self-check {k} failed: {v}"
    print(f"  {'(last resid_post vs hidden_states[-1], must differ)':45s} {last_gap:.3e}", file=sys.stderr)
    assert last_gap > 1e-2, f"{name}: last resid_post equals hidden_states[-1]; hook captured a normed state"
    return diffs


def ablation_diff(model, edit, input_ids):
    """Max |logits diff| between `model` and a copy whose config is changed by `edit` (same weights).

    Shows that the feature a fixture is about (a sliding window, rope scaling) really changes the output,
    so a C++ implementation that ignored it would fail the parity test."""
    cfg = copy.deepcopy(model.config)
    edit(cfg)
    other = type(model)(cfg).float().eval()
    other.load_state_dict(model.state_dict())
    ids = torch.tensor([input_ids])
    with torch.no_grad():
        return max_diff(model(ids, use_cache=False).logits, other(ids, use_cache=False).logits)


def write_fixture(name, model, blocks, final_norm, lm_head, input_ids, note, ablation=None):
    """ablation: optional (description, edit(config)) whose effect on the logits must exceed 1e-2."""
    out_dir = os.path.join(FIXTURES, name)
    save_checkpoint(model, out_dir)

    # Reload from the written checkpoint so the reference comes from exactly what the C++ side will read.
    reloaded = type(model).from_pretrained(out_dir, attn_implementation="eager", torch_dtype=torch.float32)
    reloaded.eval()
    assert reloaded.config._attn_implementation == "eager"
    blocks, final_norm, lm_head = blocks(reloaded), final_norm(reloaded), lm_head(reloaded)

    ref = run_reference(reloaded, blocks, final_norm, input_ids)
    cfg = reloaded.config
    stored = {
        "input_ids": list(input_ids),
        "embed": to_list(ref["embed"]),
        "resid_post": [to_list(r) for r in ref["resid_post"]],
        "ln_final": to_list(ref["ln_final"]),
        "logits": to_list(ref["logits"]),
        "attentions": to_list(ref["attentions"]),
    }
    diffs = self_check(name, ref, stored, final_norm, lm_head)
    extra = {}
    if ablation is not None:
        what, edit = ablation
        gap = ablation_diff(reloaded, edit, input_ids)
        print(f"  {'(logits if ' + what + ', must differ)':45s} {gap:.3e}", file=sys.stderr)
        assert gap > 1e-2, f"{name}: '{what}' does not change the logits ({gap}); the fixture would not test it"
        extra["ablation_max_abs_logit_diff"] = {what: float(f"{gap:.3g}")}

    doc = {
        "name": name,
        "model_type": cfg.model_type,
        "shapes": {
            "T": len(input_ids),
            "n_layer": len(blocks),
            "n_head": int(ref["attentions"].shape[1]),
            "d_model": int(ref["embed"].shape[-1]),
            "vocab": int(ref["logits"].shape[-1]),
            "embed": list(ref["embed"].shape),
            "resid_post": [len(blocks)] + list(ref["embed"].shape),
            "ln_final": list(ref["ln_final"].shape),
            "logits": list(ref["logits"].shape),
            "attentions": list(ref["attentions"].shape),
        },
        **stored,
        "self_check_max_abs_diff": {k: float(f"{v:.3g}") for k, v in diffs.items()},
        **extra,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "note": note,
    }
    path = os.path.join(out_dir, "reference.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    os.replace(path + ".tmp", path)

    for fn in sorted(os.listdir(out_dir)):
        size = os.path.getsize(os.path.join(out_dir, fn))
        print(f"  {name}/{fn}: {size} bytes", file=sys.stderr)
        assert size < MAX_FILE_BYTES, f"{name}/{fn} is {size} bytes, over the 1 MiB fixture budget"


NOTE_COMMON = (
    "Produced by tests/parity/make_fixtures.py: random weights (seeded; weights N(0, {w}), biases N(0, {b}), "
    "norm gains 1 + U(-{n}, {n})), float32, CPU, model.eval(), attn_implementation='eager', no KV cache. "
    "Model reloaded from this directory's model.safetensors before the forward pass. "
    "embed = hidden_states[0] (input to block 0); resid_post[l] = output of decoder block l captured with a "
    "forward hook on the block module (NOT hidden_states[l+1] for the last block, which HF returns final-normed); "
    "ln_final = output of the final norm module; logits = ln_final @ lm_head.weight^T; attentions = post-softmax "
    "patterns [layer][head][query][key] from output_attentions=True. Floats rounded to {s} significant digits. "
).format(w=WEIGHT_STD, b=BIAS_STD, n=NORM_JITTER, s=SIG_DIGITS)


def make_gpt2():
    cfg = GPT2Config(
        n_layer=3,
        n_embd=32,
        n_head=4,
        vocab_size=97,
        n_positions=64,
        activation_function="gelu_new",
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(1234)
    model = GPT2LMHeadModel(cfg).float().eval()
    init_weights(model, seed=1234)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "GPT-2 head must be tied"

    g = torch.Generator().manual_seed(4321)
    input_ids = torch.randint(0, cfg.vocab_size, (SEQ_LEN,), generator=g).tolist()
    write_fixture(
        "tiny-gpt2",
        model,
        blocks=lambda m: m.transformer.h,
        final_norm=lambda m: m.transformer.ln_f,
        lm_head=lambda m: m.lm_head,
        input_ids=input_ids,
        note=NOTE_COMMON + "GPT-2: tied head (model.safetensors holds only transformer.wte.weight), gelu_new, "
        "Conv1D weights stored (in, out); input_ids drawn uniformly from [0, vocab) with seed 4321.",
    )


def make_llama():
    cfg = LlamaConfig(
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=101,
        max_position_embeddings=64,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(5678)
    model = LlamaForCausalLM(cfg).float().eval()
    init_weights(model, seed=5678)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr(), "head must be untied"

    g = torch.Generator().manual_seed(8765)
    input_ids = [cfg.bos_token_id] + torch.randint(3, cfg.vocab_size, (SEQ_LEN - 1,), generator=g).tolist()
    write_fixture(
        "tiny-llama",
        model,
        blocks=lambda m: m.model.layers,
        final_norm=lambda m: m.model.norm,
        lm_head=lambda m: m.lm_head,
        input_ids=input_ids,
        note=NOTE_COMMON + "LLaMA: GQA (4 query heads, 2 KV heads, head_dim 8), untied lm_head, SiLU-gated MLP, "
        "RMSNorm eps 1e-5, HF rotate_half RoPE with theta 10000 (no q/k permutation); input_ids = [bos=1] + 10 ids "
        "drawn uniformly from [3, vocab) with seed 8765.",
    )


def make_gpt_neox(name, parallel, rotary_pct, seed):
    cfg = GPTNeoXConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        vocab_size=107,
        max_position_embeddings=64,
        rotary_pct=rotary_pct,
        rotary_emb_base=1000,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        use_parallel_residual=parallel,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(cfg).float().eval()
    init_weights(model, seed=seed)
    assert model.embed_out.weight.data_ptr() != model.gpt_neox.embed_in.weight.data_ptr(), "head must be untied"

    g = torch.Generator().manual_seed(seed + 1)
    input_ids = torch.randint(0, cfg.vocab_size, (SEQ_LEN,), generator=g).tolist()
    rotary_dim = int(cfg.hidden_size // cfg.num_attention_heads * rotary_pct)
    write_fixture(
        name,
        model,
        blocks=lambda m: m.gpt_neox.layers,
        final_norm=lambda m: m.gpt_neox.final_layer_norm,
        lm_head=lambda m: m.embed_out,
        input_ids=input_ids,
        note=NOTE_COMMON + f"GPT-NeoX: use_parallel_residual={parallel}, head_dim 8 of which rotary_pct "
        f"{rotary_pct} -> {rotary_dim} dims rotate (rotary_emb_base 1000), LayerNorm with bias, exact gelu, fused "
        f"query_key_value laid out per head [q_h|k_h|v_h], attention biases, untied embed_out; input_ids drawn "
        f"uniformly from [0, vocab) with seed {seed + 1}.",
    )


def make_mistral():
    window = 4
    cfg = MistralConfig(
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=103,
        max_position_embeddings=64,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        sliding_window=window,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(2468)
    model = MistralForCausalLM(cfg).float().eval()
    init_weights(model, seed=2468)

    g = torch.Generator().manual_seed(8642)
    input_ids = [cfg.bos_token_id] + torch.randint(3, cfg.vocab_size, (SEQ_LEN - 1,), generator=g).tolist()
    assert len(input_ids) > window
    write_fixture(
        "tiny-mistral",
        model,
        blocks=lambda m: m.model.layers,
        final_norm=lambda m: m.model.norm,
        lm_head=lambda m: m.lm_head,
        input_ids=input_ids,
        note=NOTE_COMMON + f"Mistral: sliding_window {window} < {SEQ_LEN} tokens (query i attends keys i-{window - 1}..i), "
        "GQA (4 query heads, 2 KV heads), untied lm_head, SiLU-gated MLP, RMSNorm eps 1e-5, rope_theta 10000; "
        "input_ids = [bos=1] + 10 ids drawn uniformly from [3, vocab) with seed 8642.",
        ablation=("sliding_window were null", lambda c: setattr(c, "sliding_window", None)),
    )


def make_qwen2():
    cfg = Qwen2Config(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=109,
        max_position_embeddings=64,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        use_sliding_window=False,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    # Real Qwen2 config.json files carry a sliding_window number next to use_sliding_window false; the
    # window must then be ignored (transformers sets it to None on load). Write one to test that.
    cfg.sliding_window = 4
    torch.manual_seed(1357)
    model = Qwen2ForCausalLM(cfg).float().eval()
    init_weights(model, seed=1357)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "head must be tied"

    g = torch.Generator().manual_seed(7531)
    input_ids = torch.randint(3, cfg.vocab_size, (SEQ_LEN,), generator=g).tolist()
    write_fixture(
        "tiny-qwen2",
        model,
        blocks=lambda m: m.model.layers,
        final_norm=lambda m: m.model.norm,
        lm_head=lambda m: m.lm_head,
        input_ids=input_ids,
        note=NOTE_COMMON + "Qwen2: biases on q/k/v projections (none on o_proj), tied head, GQA (4 query heads, 2 KV "
        "heads), rope_theta 1e6, RMSNorm eps 1e-6; config.json has sliding_window 4 with use_sliding_window false "
        "(ignored, as transformers does); input_ids drawn uniformly from [3, vocab) with seed 7531.",
    )


def make_llama3():
    scaling = {
        "rope_type": "llama3",
        "factor": 4.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    cfg = LlamaConfig(
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=101,
        max_position_embeddings=256,
        rope_theta=500.0,
        rope_scaling=scaling,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    # head_dim 16 -> 8 frequencies with wavelengths 2*pi*500^(i/8): 6.3 13.7 29.7 64.5 140 305 664 1443.
    # Thresholds: original_max_position / high_freq_factor = 16, / low_freq_factor = 64, so dims 0-1 keep their
    # frequency, dim 2 is on the smooth ramp and dims 3-7 are slowed by `factor`. Keep every wavelength clear of
    # the thresholds so float32 (transformers) and double (lens) rounding cannot fall on different sides.
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, head_dim, 2).double() / head_dim))
    wavelen = 2 * math.pi / inv
    for t in (64.0, 16.0):
        assert ((wavelen - t).abs() / t).min() > 5e-3, (wavelen, t)
    torch.manual_seed(9753)
    model = LlamaForCausalLM(cfg).float().eval()
    init_weights(model, seed=9753)

    seq_len = 24  # a longer sequence so the scaled low frequencies rotate visibly
    g = torch.Generator().manual_seed(3579)
    input_ids = [cfg.bos_token_id] + torch.randint(3, cfg.vocab_size, (seq_len - 1,), generator=g).tolist()
    write_fixture(
        "tiny-llama3",
        model,
        blocks=lambda m: m.model.layers,
        final_norm=lambda m: m.model.norm,
        lm_head=lambda m: m.lm_head,
        input_ids=input_ids,
        note=NOTE_COMMON + "Llama 3: rope_scaling llama3 (factor 4, low_freq_factor 1, high_freq_factor 4, "
        "original_max_position_embeddings 64) with rope_theta 500 and head_dim 16, so of the 8 rotary frequencies "
        "2 are kept, 1 is on the smooth ramp and 5 are divided by 4; GQA (2 query heads, 1 KV head), untied head; "
        f"{seq_len} tokens: [bos=1] + ids drawn uniformly from [3, vocab) with seed 3579.",
        ablation=("rope_scaling were null", lambda c: setattr(c, "rope_scaling", None)),
    )


def make_gemma():
    cfg = GemmaConfig(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=12,  # != hidden_size / num_attention_heads = 8
        vocab_size=113,
        max_position_embeddings=64,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        hidden_act="gelu",  # ignored: with hidden_activation null transformers uses gelu_pytorch_tanh
        hidden_activation=None,
        tie_word_embeddings=True,
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
    )
    torch.manual_seed(8642)
    model = GemmaForCausalLM(cfg).float().eval()
    init_weights(model, seed=8642)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "head must be tied"

    g = torch.Generator().manual_seed(2468)
    input_ids = [cfg.bos_token_id] + torch.randint(3, cfg.vocab_size, (SEQ_LEN - 1,), generator=g).tolist()
    write_fixture(
        "tiny-gemma",
        model,
        blocks=lambda m: m.model.layers,
        final_norm=lambda m: m.model.norm,
        lm_head=lambda m: m.lm_head,
        input_ids=input_ids,
        note=NOTE_COMMON + "Gemma: embeddings times sqrt(32) (normalizer in float32), RMSNorm scaling by (1 + w) "
        "(stored w = 1 + U(-0.1, 0.1), so gains ~2), GeGLU with tanh gelu (hidden_act 'gelu' but hidden_activation "
        "null, which transformers 4.46 maps to gelu_pytorch_tanh), head_dim 12 with hidden 32 and 4 heads, GQA "
        "(2 KV heads), tied head; input_ids = [bos=2] + 10 ids drawn uniformly from [3, vocab) with seed 2468.",
    )


FIXTURE_MAKERS = {
    "tiny-gpt2": make_gpt2,
    "tiny-llama": make_llama,
    "tiny-llama3": make_llama3,
    "tiny-gpt-neox": lambda: make_gpt_neox("tiny-gpt-neox", parallel=True, rotary_pct=0.5, seed=1111),
    "tiny-gpt-neox-seq": lambda: make_gpt_neox("tiny-gpt-neox-seq", parallel=False, rotary_pct=0.25, seed=2222),
    "tiny-mistral": make_mistral,
    "tiny-qwen2": make_qwen2,
    "tiny-gemma": make_gemma,
}


def main():
    torch.set_num_threads(1)  # deterministic and light on a shared machine
    print(f"torch {torch.__version__}, transformers {transformers.__version__}", file=sys.stderr)
    names = sys.argv[1:] or list(FIXTURE_MAKERS)
    unknown = [n for n in names if n not in FIXTURE_MAKERS]
    if unknown:
        sys.exit(f"unknown fixture(s) {unknown}; known: {list(FIXTURE_MAKERS)}")
    for n in names:
        FIXTURE_MAKERS[n]()


if __name__ == "__main__":
    main()
