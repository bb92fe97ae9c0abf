# Builds tiny random decoder models with Hugging Face transformers 5.x (pinned in requirements-v5.txt), saves them
# with save_pretrained under tests/fixtures/v5/<name>/ (config.json in the v5 layout + float32 model.safetensors,
# plus config.v4.json: the same model in the transformers-4.x config layout where that exists), and records float64
# reference activations, TransformerLens-style hook values and the logit lens in reference.json for the C++ parity
# tests. Deterministic (fixed seeds), CPU only. Reference tooling only; building and testing lens never runs Python.
#
# Usage: /work/venv5/bin/python tests/parity/make_fixtures_v5.py [fixture names...]   (no names: all fixtures)
# See tests/parity/README.md ("v5 fixtures") for the layout of reference.json.

import contextlib
import copy
import json
import math
import os
import shutil
import sys
import tempfile

import torch
import torch.nn.functional as F
import transformers
from torch import nn

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_ROOT = os.path.join(REPO_ROOT, "tests", "fixtures", "v5")

WEIGHT_STD = 0.2  # larger than HF's 0.02 so every layer visibly changes the residual stream
BIAS_STD = 0.1
NORM_JITTER = 0.1  # norm gains are 1 + U(-0.1, 0.1) (Gemma-style (1 + w) norms: w = U(-0.1, 0.1) + 1, gains ~2)
SIG_DIGITS = 9
SELF_TOL = 1e-9  # self-checks on the float64 tensors
V4_TOL = 1e-12  # config.v4.json vs config.json logits, float64
ABLATION_MIN = 1e-2  # every ablated feature must move some logit by more than this
MAX_ABS_ACT = 30.0  # keep activations moderate so a float32 implementation can match to ~1e-4
MAX_FILE_BYTES = 1 << 20
V4_TRANSFORMERS_VERSION = "4.57.1"  # written into config.v4.json, as a 4.x save_pretrained would


# ----------------------------------------------------------------------------------------------------------------------
# True float64: transformers upcasts "to full precision" by calling .float() / .to(torch.float32) (RMSNorm, softmax
# in eager attention, RoPE cos/sin and inv_freq, Ernie/GLM rotary). In a float64 model those casts DOWNCAST to
# float32. Inside this context every request for float32 yields float64 instead, so the reference is float64
# end to end. reference.json records how far transformers' own float64-with-float32-islands logits are from it.
# ----------------------------------------------------------------------------------------------------------------------
_F32 = (torch.float32,)


def _promote(dtype):
    return torch.float64 if dtype in _F32 else dtype


@contextlib.contextmanager
def float64_everywhere():
    orig_float = torch.Tensor.float
    orig_to = torch.Tensor.to
    orig_type = torch.Tensor.type
    orig_softmax = F.softmax
    orig_log_softmax = F.log_softmax
    factories = {n: getattr(torch, n) for n in ("arange", "tensor", "zeros", "ones", "empty", "full", "linspace")}

    def p_float(self, *a, **k):
        return orig_to(self, torch.float64) if self.dtype != torch.float64 else self

    def p_to(self, *args, **kwargs):
        args = tuple(_promote(a) if isinstance(a, torch.dtype) else a for a in args)
        if "dtype" in kwargs:
            kwargs["dtype"] = _promote(kwargs["dtype"])
        return orig_to(self, *args, **kwargs)

    def p_type(self, dtype=None, *a, **k):
        if isinstance(dtype, torch.dtype):
            dtype = _promote(dtype)
        return orig_type(self, dtype, *a, **k) if dtype is not None else orig_type(self)

    def p_softmax(x, *a, dtype=None, **k):
        return orig_softmax(x, *a, dtype=_promote(dtype) if dtype is not None else None, **k)

    def p_log_softmax(x, *a, dtype=None, **k):
        return orig_log_softmax(x, *a, dtype=_promote(dtype) if dtype is not None else None, **k)

    def p_factory(fn):
        def wrapped(*a, **k):
            if "dtype" in k:
                k["dtype"] = _promote(k["dtype"])
            return fn(*a, **k)

        return wrapped

    torch.Tensor.float, torch.Tensor.to, torch.Tensor.type = p_float, p_to, p_type
    F.softmax, F.log_softmax = p_softmax, p_log_softmax
    nn.functional.softmax = p_softmax
    for n, fn in factories.items():
        setattr(torch, n, p_factory(fn))
    prev_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(prev_default)
        torch.Tensor.float, torch.Tensor.to, torch.Tensor.type = orig_float, orig_to, orig_type
        F.softmax, F.log_softmax = orig_softmax, orig_log_softmax
        nn.functional.softmax = orig_softmax
        for n, fn in factories.items():
            setattr(torch, n, fn)


# ----------------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------------
def getmod(root, path):
    m = root
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


def init_weights(model, seed, norm_names=("norm", "ln_", "layernorm"), one_plus_w=False):
    """Norm gains 1 + U(-0.1, 0.1) (for (1 + w) norms w is stored so that 1 + w ~ 2), biases N(0, 0.1),
    other weights N(0, 0.2). xIELU's scalar parameters: their defaults plus a small per-layer jitter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied parameters are listed once
            if ".act_fn." in name:  # xIELU alpha_p / alpha_n (softplus-parametrised scalars)
                p.add_(0.1 * (2.0 * torch.rand(p.shape, generator=g) - 1.0))
            elif any(n in name for n in norm_names) and name.endswith(".weight"):
                p.copy_(1.0 + NORM_JITTER * (2.0 * torch.rand(p.shape, generator=g) - 1.0))
            elif name.endswith(".bias"):
                p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
            else:
                p.copy_(WEIGHT_STD * torch.randn(p.shape, generator=g))


def rounded(x):
    """Nested lists of floats with SIG_DIGITS significant digits."""
    if isinstance(x, torch.Tensor):
        x = x.detach().double().tolist()
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return float(f"{x:.{SIG_DIGITS}g}")


def maxdiff(a, b):
    return (a.double() - b.double()).abs().max().item()


def first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


# ----------------------------------------------------------------------------------------------------------------------
# Family descriptions: where the blocks are and what each sub-layer adds to the residual stream.
#   attn / mlp: (submodule of the block whose output is added, or a callable(block) -> module), times `mult(config)`
#   mid: submodule of the block whose INPUT is resid_mid (None for parallel-residual blocks)
# ----------------------------------------------------------------------------------------------------------------------
def _rm(cfg):
    return float(cfg.residual_multiplier)


LLAMA_LIKE = dict(layers="model.layers", final_norm="model.norm", lm_head="lm_head",
                  attn="self_attn", mlp="mlp", mid="post_attention_layernorm")
FAMILIES = {
    "gpt2": dict(layers="transformer.h", final_norm="transformer.ln_f", lm_head="lm_head",
                 attn="attn", mlp="mlp", mid="ln_2"),
    "gpt_neox": dict(layers="gpt_neox.layers", final_norm="gpt_neox.final_layer_norm", lm_head="lm_head",
                     attn="attention", mlp="mlp",
                     mid=lambda cfg: None if cfg.use_parallel_residual else "post_attention_layernorm"),
    "llama": LLAMA_LIKE, "mistral": LLAMA_LIKE, "qwen2": LLAMA_LIKE, "gemma": LLAMA_LIKE, "qwen3": LLAMA_LIKE,
    "smollm3": LLAMA_LIKE, "ministral": LLAMA_LIKE, "arcee": LLAMA_LIKE, "seed_oss": LLAMA_LIKE,
    "hunyuan_v1_dense": LLAMA_LIKE, "ernie4_5": LLAMA_LIKE,
    "apertus": dict(LLAMA_LIKE, mid="feedforward_layernorm"),
    # post-norm only: attention reads the raw residual; what is added is post_attention_layernorm(attn(x)).
    "exaone4": dict(LLAMA_LIKE, attn="post_attention_layernorm", mlp="post_feedforward_layernorm", mid="mlp"),
    # sandwich norms: pre-norms input_layernorm / post_attention_layernorm, post-norms post_self_attn_layernorm /
    # post_mlp_layernorm whose outputs are what is added.
    "glm4": dict(LLAMA_LIKE, attn="post_self_attn_layernorm", mlp="post_mlp_layernorm"),
    "granite": dict(LLAMA_LIKE, attn_mult=_rm, mlp_mult=_rm,
                    logits_post=lambda cfg, x: x / cfg.logits_scaling),
    # Gemma 2/3 sandwich norms: input_layernorm -> attn -> post_attention_layernorm -> add;
    # pre_feedforward_layernorm (input = resid_mid) -> mlp -> post_feedforward_layernorm -> add; final logit soft-cap.
    "gemma2": dict(LLAMA_LIKE, attn="post_attention_layernorm", mlp="post_feedforward_layernorm",
                   mid="pre_feedforward_layernorm", logits_post=lambda cfg, x: _softcap(x, cfg.final_logit_softcapping)),
    "gemma3_text": dict(LLAMA_LIKE, attn="post_attention_layernorm", mlp="post_feedforward_layernorm",
                        mid="pre_feedforward_layernorm",
                        logits_post=lambda cfg, x: _softcap(x, cfg.final_logit_softcapping)),
    # post-norm only, like EXAONE 4
    "olmo2": dict(LLAMA_LIKE, attn="post_attention_layernorm", mlp="post_feedforward_layernorm", mid="mlp"),
    "olmo3": dict(LLAMA_LIKE, attn="post_attention_layernorm", mlp="post_feedforward_layernorm", mid="mlp"),
    "olmo": LLAMA_LIKE,
    "phi3": LLAMA_LIKE,
    # parallel block on one LayerNorm: resid_post = resid_pre + attn_out + mlp_out
    "phi": dict(LLAMA_LIKE, final_norm="model.final_layernorm", mid=None),
    "starcoder2": LLAMA_LIKE,
    "stablelm": dict(LLAMA_LIKE, mid=lambda cfg: None if cfg.use_parallel_residual else "post_attention_layernorm"),
    # parallel block on one LayerNorm, logits times logit_scale
    "cohere": dict(LLAMA_LIKE, mid=None, logits_post=lambda cfg, x: x * cfg.logit_scale),
    "cohere2": dict(LLAMA_LIKE, mid=None, logits_post=lambda cfg, x: x * cfg.logit_scale),
    "gptj": dict(layers="transformer.h", final_norm="transformer.ln_f", lm_head="lm_head", attn="attn", mlp="mlp",
                 mid=None),
    "gpt_neo": dict(layers="transformer.h", final_norm="transformer.ln_f", lm_head="lm_head", attn="attn", mlp="mlp",
                    mid="ln_2"),
    "falcon": dict(layers="transformer.h", final_norm="transformer.ln_f", lm_head="lm_head", attn="self_attention",
                   mlp="mlp", mid=lambda cfg: None if cfg.parallel_attn else "post_attention_layernorm"),
}


def _softcap(x, cap):
    return x if cap is None else torch.tanh(x / cap) * cap


def family(model):
    fam = dict(FAMILIES[model.config.model_type])
    if callable(fam["mid"]):
        fam["mid"] = fam["mid"](model.config)
    return fam


def readout(model, fam, resid):
    """The model's own head: final norm, lm_head, then the CausalLM forward's logit post-processing."""
    logits = getmod(model, fam["lm_head"])(getmod(model, fam["final_norm"])(resid))
    post = fam.get("logits_post")
    return post(model.config, logits) if post else logits


def rope_buffers_to_float64(model):
    """transformers computes inv_freq in float32 (explicit dtype=torch.float). Recompute every rotary module's
    buffers with the same init function under float64_everywhere(), as PreTrainedModel._init_weights does."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    n = 0
    for mod in model.modules():
        if "RotaryEmbedding" in type(mod).__name__ and hasattr(mod, "original_inv_freq"):
            fns = {"default": getattr(mod, "compute_default_rope_parameters", None),
                   "ntk_alpha": getattr(mod, "compute_ntk_alpha_rope_parameters", None), **ROPE_INIT_FUNCTIONS}
            with float64_everywhere():
                inv, scale = fns[mod.rope_type](mod.config)
            assert inv.dtype == torch.float64, inv.dtype
            mod.register_buffer("inv_freq", inv, persistent=False)
            mod.register_buffer("original_inv_freq", inv.clone(), persistent=False)
            mod.attention_scaling = scale
            n += 1
    return n


def load64(path, cls):
    m = cls.from_pretrained(path, attn_implementation="eager", dtype=torch.float64)
    m.eval()
    assert m.config._attn_implementation == "eager"
    for n, p in m.named_parameters():
        assert p.dtype == torch.float64, n
    rope_buffers_to_float64(m)
    return m


def logits64(model, ids, promote=True):
    ctx = float64_everywhere() if promote else contextlib.nullcontext()
    with ctx, torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0]


def run_reference(model, ids):
    fam = family(model)
    cfg = model.config
    layers = getmod(model, fam["layers"])
    n = len(layers)
    cap = {k: [None] * n for k in ("pre", "post", "attn", "mlp", "mid")}
    cap["ln_final"] = None
    handles = []

    def hidden_arg(args, kwargs):
        return args[0] if args else kwargs["hidden_states"]

    for l, layer in enumerate(layers):
        def pre_hook(_m, args, kwargs, l=l):
            cap["pre"][l] = hidden_arg(args, kwargs).detach().clone()

        def post_hook(_m, _a, out, l=l):
            cap["post"][l] = first(out).detach().clone()

        def out_hook(key, l=l):
            def h(_m, _a, out):
                cap[key][l] = first(out).detach().clone()
            return h

        def mid_hook(_m, args, kwargs, l=l):
            cap["mid"][l] = hidden_arg(args, kwargs).detach().clone()

        handles.append(layer.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(layer.register_forward_hook(post_hook))
        handles.append(getmod(layer, fam["attn"]).register_forward_hook(out_hook("attn")))
        handles.append(getmod(layer, fam["mlp"]).register_forward_hook(out_hook("mlp")))
        if fam["mid"]:
            handles.append(getmod(layer, fam["mid"]).register_forward_pre_hook(mid_hook, with_kwargs=True))

    def norm_hook(_m, _a, out):
        cap["ln_final"] = first(out).detach().clone()

    handles.append(getmod(model, fam["final_norm"]).register_forward_hook(norm_hook))
    try:
        with float64_everywhere(), torch.no_grad():
            out = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True, use_cache=False)
            am = fam.get("attn_mult", lambda c: 1.0)(cfg)
            mm = fam.get("mlp_mult", lambda c: 1.0)(cfg)
            hooks = {}
            for l in range(n):
                hooks[f"blocks.{l}.hook_resid_pre"] = cap["pre"][l][0]
                hooks[f"blocks.{l}.hook_attn_out"] = cap["attn"][l][0] * am
                if fam["mid"]:
                    hooks[f"blocks.{l}.hook_resid_mid"] = cap["mid"][l][0]
                hooks[f"blocks.{l}.hook_mlp_out"] = cap["mlp"][l][0] * mm
                hooks[f"blocks.{l}.hook_resid_post"] = cap["post"][l][0]
                hooks[f"blocks.{l}.attn.hook_pattern"] = out.attentions[l][0]
            hooks["ln_final.hook_normalized"] = cap["ln_final"][0]
            logits = out.logits[0]
            # logit lens through the model's own head
            reads = [hooks["blocks.0.hook_resid_pre"]] + [hooks[f"blocks.{l}.hook_resid_post"] for l in range(n)]
            lens_logits = torch.stack([readout(model, fam, r) for r in reads])  # (n+1, T, V)
            normed_last = getmod(model, fam["final_norm"])(hooks[f"blocks.{n - 1}.hook_resid_post"])
    finally:
        for h in handles:
            h.remove()

    for k, v in hooks.items():
        assert v.dtype == torch.float64, (k, v.dtype)
    logp = torch.log_softmax(lens_logits, dim=-1)
    probs = logp.exp()
    entropy = -(probs * logp).sum(-1)
    kl = (probs[-1] * (logp[-1] - logp)).sum(-1)

    # self-checks on the float64 tensors
    sc = {}
    sc["readout_last_resid_post_vs_logits"] = maxdiff(lens_logits[-1], logits)
    sc["final_norm_last_resid_post_vs_ln_final"] = maxdiff(normed_last, hooks["ln_final.hook_normalized"])
    d_mid, d_post, d_chain, d_hs = 0.0, 0.0, 0.0, 0.0
    for l in range(n):
        pre, a, m, post = (hooks[f"blocks.{l}.{k}"] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out",
                                                             "hook_resid_post"))
        if fam["mid"]:
            mid = hooks[f"blocks.{l}.hook_resid_mid"]
            d_mid = max(d_mid, maxdiff(pre + a, mid))
            d_post = max(d_post, maxdiff(mid + m, post))
        else:
            d_post = max(d_post, maxdiff(pre + a + m, post))
        if l + 1 < n:
            d_chain = max(d_chain, maxdiff(post, hooks[f"blocks.{l + 1}.hook_resid_pre"]))
        d_hs = max(d_hs, maxdiff(pre, out.hidden_states[l][0]))
    if fam["mid"]:
        sc["resid_pre_plus_attn_out_vs_resid_mid"] = d_mid
        sc["resid_mid_plus_mlp_out_vs_resid_post"] = d_post
    else:
        sc["resid_pre_plus_attn_out_plus_mlp_out_vs_resid_post"] = d_post
    sc["resid_post_l_vs_resid_pre_l_plus_1"] = d_chain
    sc["resid_pre_l_vs_hidden_states_l"] = d_hs
    pat = torch.stack([hooks[f"blocks.{l}.attn.hook_pattern"] for l in range(n)])
    sc["attention_rows_sum_to_1"] = maxdiff(pat.sum(-1), torch.ones(pat.shape[:-1], dtype=torch.float64))
    sc["attention_upper_triangle_is_0"] = pat.triu(1).abs().max().item()
    for k, v in sc.items():
        assert v <= SELF_TOL, f"self-check {k} failed: {v}"
    # The last block's raw output must differ from HF's final-normed hidden_states[-1].
    last_gap = maxdiff(hooks[f"blocks.{n - 1}.hook_resid_post"], out.hidden_states[-1][0])
    assert last_gap > 1e-2, "last resid_post equals the final-normed hidden state"
    act_max = max(v.abs().max().item() for k, v in hooks.items() if "pattern" not in k)
    lens = {"probs": probs, "entropy": entropy, "kl_to_final": kl}
    return hooks, logits, lens, sc, act_max


def build_from_state(cls, cfg, state):
    m = cls(cfg).to(torch.float64)
    m.load_state_dict(state)
    m.eval()
    rope_buffers_to_float64(m)
    return m


def ablation_gap(model, ids, ref_logits, cfg_edit=None, model_edit=None, patch=None):
    """Rebuild the model (same weights) with a feature changed; max |logit diff| vs the reference."""
    cfg = copy.deepcopy(model.config)
    if cfg_edit:
        cfg_edit(cfg)
    other = build_from_state(type(model), cfg, model.state_dict())
    if model_edit:
        model_edit(other)
    with (patch() if patch else contextlib.nullcontext()):
        lg = logits64(other, ids)
    return maxdiff(lg, ref_logits)


def identity_modules(paths):
    """model_edit replacing every module whose dotted name ends with one of `paths` by nn.Identity."""
    def edit(model):
        names = [n for n, _ in model.named_modules() if any(n.endswith("." + p) or n == p for p in paths)]
        assert names, paths
        for n in names:
            parent, _, leaf = n.rpartition(".")
            setattr(getmod(model, parent) if parent else model, leaf, nn.Identity())
    return edit


def zero_params(suffixes):
    def edit(model):
        hit = 0
        with torch.no_grad():
            for n, p in model.named_parameters():
                if any(n.endswith(s) for s in suffixes):
                    p.zero_()
                    hit += 1
        assert hit, suffixes
    return edit


def set_rope(**changes):
    def edit(cfg):
        rp = dict(cfg.rope_parameters)
        for k, v in changes.items():
            if v is None:
                rp.pop(k, None)
            else:
                rp[k] = v
        cfg.rope_parameters = rp
    return edit


def rope_default(cfg):
    rp = cfg.rope_parameters
    keep = {"rope_type": "default", "rope_theta": rp["rope_theta"]}
    if "partial_rotary_factor" in rp:
        keep["partial_rotary_factor"] = rp["partial_rotary_factor"]
    cfg.rope_parameters = keep


def setattrs(**kv):
    def edit(cfg):
        for k, v in kv.items():
            setattr(cfg, k, v)
    return edit


# ----------------------------------------------------------------------------------------------------------------------
# config.v4.json: the same model in the transformers-4.x config.json layout
# ----------------------------------------------------------------------------------------------------------------------
def v4_layout(d, model_type, layer_types_rule=None):
    """d: the v5 config.json dict. Returns the 4.x-style dict and a description of what was translated."""
    d = copy.deepcopy(d)
    what = []
    d["torch_dtype"] = d.pop("dtype")
    what.append("dtype -> torch_dtype")
    rp = d.pop("rope_parameters", None)
    if rp and "full_attention" in rp:  # Gemma 3 / OLMo 3: rope_theta (+ rope_local_base_freq), rope_scaling for full
        full, local = dict(rp["full_attention"]), dict(rp["sliding_attention"])
        assert local == {"rope_type": "default", "rope_theta": local["rope_theta"]}, local
        d["rope_theta"] = full.pop("rope_theta")
        if model_type == "gemma3_text":
            d["rope_local_base_freq"] = local["rope_theta"]
        else:  # OLMo 3: the sliding rope always gets the class default (rope_theta is consumed by the full one)
            assert model_type == "olmo3" and local["rope_theta"] == 500000.0, (model_type, local)
        if full.get("rope_type", "default") != "default":
            full["type"] = full["rope_type"]
            d["rope_scaling"] = full
        else:
            d["rope_scaling"] = None
        what.append("rope_parameters -> rope_theta" + (" + rope_local_base_freq" if model_type == "gemma3_text" else "")
                    + " + rope_scaling")
        rp = None
    if rp:
        rp = dict(rp)
        theta = rp.pop("rope_theta")
        prf = rp.pop("partial_rotary_factor", None)
        if model_type == "gpt_neox":
            d["rotary_emb_base"] = theta
            d["rotary_pct"] = prf
            what.append("rope_parameters -> rotary_emb_base + rotary_pct")
        else:
            d["rope_theta"] = theta
            if prf is not None:
                d["partial_rotary_factor"] = prf
            what.append("rope_parameters -> rope_theta" + (" + partial_rotary_factor" if prf is not None else ""))
        if rp.get("rope_type", "default") != "default":
            rp["type"] = rp["rope_type"]  # 4.x configs often carry both
            d["rope_scaling"] = rp
            what.append("+ rope_scaling")
        else:
            d["rope_scaling"] = None
    if layer_types_rule:
        what.append(layer_types_rule(d))
    d["transformers_version"] = V4_TRANSFORMERS_VERSION
    return d, "; ".join(what)


def lt_qwen(d):
    """layer_types -> use_sliding_window + max_window_layers (layers >= max_window_layers slide)."""
    lt = d.pop("layer_types")
    k = lt.index("sliding_attention") if "sliding_attention" in lt else len(lt)
    assert all(t == "full_attention" for t in lt[:k]) and all(t == "sliding_attention" for t in lt[k:]), lt
    d["use_sliding_window"] = k < len(lt)
    d["max_window_layers"] = k
    return f"layer_types -> use_sliding_window {d['use_sliding_window']} + max_window_layers {k}"


def lt_exaone4(d):
    lt = d.pop("layer_types")
    for p in range(1, len(lt) + 1):
        if all((t == "full_attention") == ((i + 1) % p == 0) for i, t in enumerate(lt)):
            d["sliding_window_pattern"] = p
            return f"layer_types -> sliding_window_pattern {p}"
    raise AssertionError(lt)


def lt_smollm3(d):
    lt = d.pop("layer_types")
    assert not d.get("use_sliding_window") and all(t == "full_attention" for t in lt), lt
    return "layer_types dropped (derived from no_rope_layers / use_sliding_window false)"


def lt_gemma(d):
    d["hidden_act"] = "gelu"  # legacy Gemma release configs: hidden_act gelu + hidden_activation null (means tanh)
    d["hidden_activation"] = None
    return "hidden_act gelu_pytorch_tanh -> legacy 'gelu' + hidden_activation null"


def check_v4(out_dir, v4, cls, ids, ref_logits):
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(out_dir, "model.safetensors"), tmp)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(v4, f, indent=2)
        m = load64(tmp, cls)
        return maxdiff(logits64(m, ids), ref_logits)


# ----------------------------------------------------------------------------------------------------------------------
# Writing one fixture
# ----------------------------------------------------------------------------------------------------------------------
NOTE_COMMON = (
    "Produced by tests/parity/make_fixtures_v5.py with transformers {tv}: random weights (seeded; weights N(0, {w}), "
    "biases N(0, {b}), norm gains 1 + U(-{n}, {n})) saved as float32 by save_pretrained; reference computed by "
    "reloading this directory with from_pretrained(dtype=float64, attn_implementation='eager'), eval, no KV cache, "
    "with transformers' internal float32 upcasts (RMSNorm, softmax, RoPE) promoted to float64 so the whole forward "
    "is float64 (float32_islands_max_abs_logit_diff = the logit difference to transformers' unpatched float64 "
    "forward). Floats have {s} significant digits. "
).format(tv=transformers.__version__, w=WEIGHT_STD, b=BIAS_STD, n=NORM_JITTER, s=SIG_DIGITS)


def write_fixture(name, model, ids, note, ablations=(), v4_rule=None, v4_skip=None, extra=None):
    """ablations: list of (what, dict(cfg_edit=..., model_edit=..., patch=...)); each must move the logits.
    v4_rule: None (no layer_types translation needed), a callable translating layer_types, or v4_skip=reason."""
    cls = type(model)
    out_dir = os.path.join(OUT_ROOT, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir)
    gen = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    assert sorted(os.listdir(out_dir)) == ["config.json", "model.safetensors"], os.listdir(out_dir)

    m = load64(out_dir, cls)
    hooks, logits, lens, sc, act_max = run_reference(m, ids)
    islands = maxdiff(logits64(m, ids, promote=False), logits)
    assert islands < 1e-3, islands
    assert act_max < MAX_ABS_ACT, f"{name}: activations reach {act_max}"

    abl = []
    for what, kw in ablations:
        gap = ablation_gap(m, ids, logits, **kw)
        assert gap > ABLATION_MIN, f"{name}: '{what}' does not change the logits ({gap})"
        abl.append({"what": what, "max_abs_logit_diff": float(f"{gap:.3g}")})

    with open(os.path.join(out_dir, "config.json")) as f:
        cfg_v5 = json.load(f)
    v4_checked, v4_note, v4_diff = False, v4_skip, None
    if v4_skip is None:
        v4, v4_note = v4_layout(cfg_v5, m.config.model_type, v4_rule)
        v4_diff = check_v4(out_dir, v4, cls, ids, logits)
        assert v4_diff <= V4_TOL, f"{name}: config.v4.json gives different logits ({v4_diff})"
        with open(os.path.join(out_dir, "config.v4.json"), "w") as f:
            json.dump(v4, f, indent=2, sort_keys=True)
            f.write("\n")
        v4_checked = True

    n = len(getmod(m, family(m)["layers"]))
    doc = {
        "name": name,
        "model_type": m.config.model_type,
        "architectures": cfg_v5.get("architectures"),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "note": NOTE_COMMON + note + (" config.v4.json: " + v4_note + "." if v4_checked else
                                      " No config.v4.json: " + v4_note + "."),
        "shapes": {"T": len(ids), "n_layer": n, "d_model": int(hooks["blocks.0.hook_resid_pre"].shape[-1]),
                   "n_head": int(hooks["blocks.0.attn.hook_pattern"].shape[0]), "vocab": int(logits.shape[-1])},
        "input_ids": list(ids),
        "hooks": {k: rounded(v) for k, v in hooks.items()},
        "logits": rounded(logits),
        "lens": {k: rounded(v) for k, v in lens.items()},
        "ablations": abl,
        "self_check": {k: float(f"{v:.3g}") for k, v in sc.items()},
        "float32_islands_max_abs_logit_diff": float(f"{islands:.3g}"),
        "max_abs_activation": float(f"{act_max:.3g}"),
        "v4_layout_checked": v4_checked,
    }
    if v4_checked:
        doc["v4_layout_max_abs_logit_diff"] = float(f"{v4_diff:.3g}")
    if extra:
        doc.update(extra)
    path = os.path.join(out_dir, "reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")

    print(f"[{name}] {m.config.model_type} T={len(ids)} n_layer={n} max|act|={act_max:.3g} "
          f"float32-islands={islands:.2e}", file=sys.stderr)
    for k, v in sc.items():
        print(f"  self-check {k:55s} {v:.2e}", file=sys.stderr)
    for a in abl:
        print(f"  ablation   {a['what']:55s} {a['max_abs_logit_diff']:.3g}", file=sys.stderr)
    print(f"  v4 layout: " + (f"checked, max diff {v4_diff:.2e} ({v4_note})" if v4_checked else f"skipped ({v4_note})"),
          file=sys.stderr)
    for fn in sorted(os.listdir(out_dir)):
        size = os.path.getsize(os.path.join(out_dir, fn))
        assert size < MAX_FILE_BYTES, f"{name}/{fn} is {size} bytes"
    print("  files: " + ", ".join(f"{fn} {os.path.getsize(os.path.join(out_dir, fn))}"
                                  for fn in sorted(os.listdir(out_dir))), file=sys.stderr)


def make_ids(seed, T, vocab, bos=None, lo=3):
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(lo, vocab, (T - (bos is not None),), generator=g).tolist()
    return ([bos] if bos is not None else []) + body


def new_model(cls, cfg, seed, **init_kw):
    torch.manual_seed(seed)
    model = cls(cfg).float().eval()
    init_weights(model, seed, **init_kw)
    return model


# ----------------------------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------------------------
FIXTURES = {}


def fixture(name):
    def reg(fn):
        FIXTURES[name] = fn
        return fn
    return reg


# --- existing families in the v5 layout -------------------------------------------------------------------------------
@fixture("v5-gpt2")
def make_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(n_layer=3, n_embd=32, n_head=4, vocab_size=97, n_positions=64, activation_function="gelu_new",
                     tie_word_embeddings=True, bos_token_id=0, eos_token_id=0)
    model = new_model(GPT2LMHeadModel, cfg, 1234)
    write_fixture("v5-gpt2", model, make_ids(4321, 13, 97, lo=0),
                  "GPT-2: tied head, learned positions, gelu_new, Conv1D weights stored (in, out); "
                  "hook_attn_out = attn module output (c_proj), hook_resid_mid = ln_2 input.",
                  ablations=[("learned position embeddings (wpe) zeroed", dict(model_edit=zero_params(["wpe.weight"]))),
                             ("no 1/sqrt(head_dim) attention scaling", dict(cfg_edit=setattrs(scale_attn_weights=False)))])


@fixture("v5-llama")
def make_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(hidden_size=32, intermediate_size=56, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=101, max_position_embeddings=64,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, rms_norm_eps=1e-5,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = new_model(LlamaForCausalLM, cfg, 5678)
    write_fixture("v5-llama", model, make_ids(8765, 13, 101, bos=1),
                  "LLaMA: GQA (4 query heads, 2 KV heads, head_dim 8), untied lm_head, SiLU-gated MLP, RMSNorm eps "
                  "1e-5, rotate_half RoPE theta 1e4.",
                  ablations=[("rope_theta 1e4 -> 1e6", dict(cfg_edit=set_rope(rope_theta=1e6))),
                             ("KV heads paired differently (k/v heads swapped)",
                              dict(model_edit=_swap_kv_heads))])


def _swap_kv_heads(model):
    with torch.no_grad():
        for layer in model.model.layers:
            for proj in (layer.self_attn.k_proj, layer.self_attn.v_proj):
                w = proj.weight.view(2, -1, proj.weight.shape[-1])
                proj.weight.copy_(torch.stack([w[1].clone(), w[0].clone()]).view_as(proj.weight))


def _gpt_neox(name, parallel, rotary, seed):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    cfg = GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                        vocab_size=107, max_position_embeddings=64,
                        rope_parameters={"rope_type": "default", "rope_theta": 1000.0,
                                         "partial_rotary_factor": rotary},
                        hidden_act="gelu", layer_norm_eps=1e-5, use_parallel_residual=parallel,
                        tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    model = new_model(GPTNeoXForCausalLM, cfg, seed)
    other = 1.0 if rotary != 1.0 else 0.5
    write_fixture(name, model, make_ids(seed + 1, 12, 107, lo=0),
                  f"GPT-NeoX: use_parallel_residual={parallel}, head_dim 8 with partial_rotary_factor {rotary} -> "
                  f"{int(8 * rotary)} rotary dims (rotate_half on those), theta 1000, LayerNorm with bias, exact gelu, "
                  "fused query_key_value laid out per head [q_h|k_h|v_h], untied head (saved as embed_out.weight or "
                  "lm_head.weight, see model.safetensors)"
                  + ("; parallel block: resid_post = resid_pre + attn_out + mlp_out, no hook_resid_mid." if parallel
                     else "; sequential block: hook_resid_mid = post_attention_layernorm input."),
                  ablations=[(f"use_parallel_residual {parallel} -> {not parallel}",
                              dict(cfg_edit=setattrs(use_parallel_residual=not parallel))),
                             (f"partial_rotary_factor {rotary} -> {other}",
                              dict(cfg_edit=set_rope(partial_rotary_factor=other)))])


FIXTURES["v5-gpt-neox"] = lambda: _gpt_neox("v5-gpt-neox", True, 0.5, 1111)
FIXTURES["v5-gpt-neox-seq"] = lambda: _gpt_neox("v5-gpt-neox-seq", False, 0.25, 2222)


@fixture("v5-mistral")
def make_mistral():
    from transformers import MistralConfig, MistralForCausalLM
    cfg = MistralConfig(hidden_size=32, intermediate_size=56, num_hidden_layers=3, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=103, max_position_embeddings=64,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, rms_norm_eps=1e-5,
                        sliding_window=4, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = new_model(MistralForCausalLM, cfg, 2468)
    write_fixture("v5-mistral", model, make_ids(8642, 14, 103, bos=1),
                  "Mistral: sliding_window 4 < T=14 on every layer (query i attends keys i-3..i; Mistral's config "
                  "has no layer_types), GQA (4/2), untied head.",
                  ablations=[("sliding_window 4 -> null", dict(cfg_edit=setattrs(sliding_window=None)))])


@fixture("v5-qwen2")
def make_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=109, max_position_embeddings=64,
                      rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, rms_norm_eps=1e-6,
                      use_sliding_window=True, sliding_window=4, max_window_layers=1,
                      layer_types=["full_attention", "sliding_attention", "sliding_attention"],
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    model = new_model(Qwen2ForCausalLM, cfg, 1357)
    write_fixture("v5-qwen2", model, make_ids(7531, 15, 109),
                  "Qwen2: layer_types [full, sliding, sliding] with sliding_window 4 < T=15, biases on q/k/v (none on "
                  "o_proj), tied head, GQA (4/2), theta 1e6.",
                  ablations=[("all layers full_attention",
                              dict(cfg_edit=setattrs(layer_types=["full_attention"] * 3))),
                             ("q/k/v biases zeroed", dict(model_edit=zero_params(["q_proj.bias", "k_proj.bias",
                                                                                  "v_proj.bias"])))],
                  v4_rule=lt_qwen)


@fixture("v5-gemma")
def make_gemma():
    from transformers import GemmaConfig, GemmaForCausalLM
    cfg = GemmaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=12, vocab_size=113, max_position_embeddings=64,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, rms_norm_eps=1e-6,
                      hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True, bos_token_id=2, eos_token_id=1,
                      pad_token_id=0)
    model = new_model(GemmaForCausalLM, cfg, 8642)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(0.5)  # embeddings N(0, 0.1): times sqrt(32) they stay moderate
        # Stored norm weights U(-0.1, 0.1), so the (1 + w) gains are ~1 as in real Gemma checkpoints. With
        # gains ~2 every norm doubles the float32 round-off of its input, and three layers of that left
        # transformers' own float32 forward 7.5e-5 from the float64 reference (residuals up to 28).
        for n, p in model.named_parameters():
            if "norm" in n:
                p.sub_(1.0)

    def plain_norms(m):  # x * w instead of x * (1 + w): same as storing w - 1
        with torch.no_grad():
            for n, p in m.named_parameters():
                if "norm" in n:
                    p.sub_(1.0)

    def unscaled(m):
        m.model.embed_tokens.embed_scale.fill_(1.0)

    write_fixture("v5-gemma", model, make_ids(2468, 13, 113, bos=2),
                  "Gemma: embeddings N(0, 0.1) times sqrt(32) (embed_scale buffer, not in the checkpoint), RMSNorm scaling by "
                  "(1 + w) with stored w ~ U(-0.1, 0.1) (gains ~1), GeGLU with gelu_pytorch_tanh, head_dim 12 != 32/4, GQA "
                  "(4/2), tied head.",
                  ablations=[("norms x*w instead of x*(1+w)", dict(model_edit=plain_norms)),
                             ("no sqrt(d) embedding scale", dict(model_edit=unscaled))],
                  v4_rule=lt_gemma)



# --- RoPE scaling types on Llama ----------------------------------------------------------------------------------------
def lt_longrope_top_level(d):
    """Phi-3 style 4.x configs keep original_max_position_embeddings next to rope_scaling, not inside it."""
    d["original_max_position_embeddings"] = d["rope_scaling"].pop("original_max_position_embeddings")
    return "original_max_position_embeddings at top level (Phi-3 style)"


def _llama_rope(name, rope, T, max_pos, seed, note, ablations=(), v4_rule=None, theta=100.0):
    from transformers import LlamaConfig, LlamaForCausalLM
    rp = dict(rope, rope_theta=theta)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=56, num_hidden_layers=3, num_attention_heads=2,
                      num_key_value_heads=1, vocab_size=101, max_position_embeddings=max_pos, rope_parameters=rp,
                      rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = new_model(LlamaForCausalLM, cfg, seed)
    write_fixture(name, model, make_ids(seed + 1, T, 101, bos=1),
                  f"Llama with rope_parameters {json.dumps(rp, sort_keys=True)}, max_position_embeddings {max_pos}, "
                  f"T={T}, head_dim 16 (8 rotary frequencies), GQA (2 query heads, 1 KV head), untied head. " + note,
                  ablations=[("rope scaling removed (rope_type default, same theta)",
                              dict(cfg_edit=rope_default))] + list(ablations),
                  v4_rule=v4_rule)


FIXTURES["v5-rope-linear"] = lambda: _llama_rope(
    "v5-rope-linear", {"rope_type": "linear", "factor": 2.5}, 16, 64, 3101,
    "linear: inv_freq / factor.")
FIXTURES["v5-rope-dynamic"] = lambda: _llama_rope(
    "v5-rope-dynamic", {"rope_type": "dynamic", "factor": 2.0}, 24, 16, 3201,
    "dynamic NTK: T=24 > max_position_embeddings=16, so the forward recomputes inv_freq with "
    "base = theta * (factor * T / max_pos - (factor - 1)) ** (dim / (dim - 2)), seq_len = max position + 1 = T.")
FIXTURES["v5-rope-yarn"] = lambda: _llama_rope(
    "v5-rope-yarn", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256,
                     "beta_fast": 16.0, "beta_slow": 2.0}, 16, 1024, 3301,
    "yarn: correction range from beta_fast 16 / beta_slow 2 (floor/ceil, truncate default true), attention_factor "
    "unset -> 0.1 ln(factor) + 1 multiplies cos and sin.",
    ablations=[("beta_fast/beta_slow removed (defaults 32/1)",
                dict(cfg_edit=set_rope(beta_fast=None, beta_slow=None)))])
FIXTURES["v5-rope-yarn-mscale"] = lambda: _llama_rope(
    "v5-rope-yarn-mscale", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256,
                            "mscale": 1.0, "mscale_all_dim": 0.5}, 16, 1024, 3401,
    "yarn with mscale 1 and mscale_all_dim 0.5 and no attention_factor: attention_factor = "
    "(0.1 * mscale * ln(factor) + 1) / (0.1 * mscale_all_dim * ln(factor) + 1).",
    ablations=[("mscale/mscale_all_dim removed", dict(cfg_edit=set_rope(mscale=None, mscale_all_dim=None)))])
FIXTURES["v5-rope-yarn-notrunc"] = lambda: _llama_rope(
    "v5-rope-yarn-notrunc", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256,
                             "beta_fast": 16.0, "beta_slow": 2.0, "truncate": False}, 16, 1024, 3501,
    "yarn with truncate false: the correction range bounds (1.62, 5.24 here) are not floored/ceiled.",
    ablations=[("truncate false -> true", dict(cfg_edit=set_rope(truncate=True)))])
_SHORT = [1.0, 1.1, 1.3, 1.6, 2.0, 2.6, 3.3, 4.0]
_LONG = [1.0, 1.4, 2.2, 3.5, 5.0, 7.5, 10.0, 14.0]
FIXTURES["v5-rope-longrope-long"] = lambda: _llama_rope(
    "v5-rope-longrope-long", {"rope_type": "longrope", "original_max_position_embeddings": 16,
                              "short_factor": _SHORT, "long_factor": _LONG}, 20, 64, 3601,
    "longrope: T=20 > original_max_position_embeddings=16, so inv_freq = 1 / (long_factor * theta^(2i/d)); no "
    "factor given -> factor = max_position_embeddings / original = 4, attention_factor = "
    "sqrt(1 + ln 4 / ln 16) multiplies cos and sin (for short and long alike).",
    ablations=[("long_factor replaced by short_factor", dict(cfg_edit=set_rope(long_factor=_SHORT)))],
    v4_rule=lt_longrope_top_level)
FIXTURES["v5-rope-longrope-short"] = lambda: _llama_rope(
    "v5-rope-longrope-short", {"rope_type": "longrope", "original_max_position_embeddings": 16, "factor": 4.0,
                               "short_factor": _SHORT, "long_factor": _LONG}, 16, 64, 3701,
    "longrope: T=16 <= original_max_position_embeddings=16, so the short factors are used; factor 4 given "
    "explicitly, attention_factor = sqrt(1 + ln 4 / ln 16).",
    ablations=[("short_factor replaced by long_factor", dict(cfg_edit=set_rope(short_factor=_LONG)))])
FIXTURES["v5-rope-llama3"] = lambda: _llama_rope(
    "v5-rope-llama3", {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 64}, 24, 256, 3801,
    "llama3: theta 500, wavelengths 2 pi 500^(i/8) vs thresholds 16 and 64: 2 frequencies kept, 1 on the smooth "
    "ramp, 5 divided by the factor.", theta=500.0)



# --- newer families ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def patch_attr(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _cfg(cls, **kw):
    base = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
                bos_token_id=1, eos_token_id=2, pad_token_id=0)
    base.update(kw)
    return cls(**base)


ROPE_1E4 = {"rope_type": "default", "rope_theta": 10000.0}
ALL_FULL = lambda n: setattrs(layer_types=["full_attention"] * n)  # noqa: E731


@fixture("v5-qwen3")
def make_qwen3():
    from transformers import Qwen3Config, Qwen3ForCausalLM
    cfg = _cfg(Qwen3Config, head_dim=8, vocab_size=111, rope_parameters=dict(ROPE_1E4), use_sliding_window=True,
               sliding_window=4, max_window_layers=2,
               layer_types=["full_attention", "full_attention", "sliding_attention"], tie_word_embeddings=True)
    model = new_model(Qwen3ForCausalLM, cfg, 4101)
    write_fixture("v5-qwen3", model, make_ids(4102, 15, 111, bos=1),
                  "Qwen3: per-head RMSNorm q_norm/k_norm on q and k BEFORE RoPE (weights of size head_dim), "
                  "layer_types [full, full, sliding] with sliding_window 4 < T=15, no attention biases, tied head.",
                  ablations=[("q_norm/k_norm removed", dict(model_edit=identity_modules(["q_norm", "k_norm"]))),
                             ("all layers full_attention", dict(cfg_edit=ALL_FULL(3)))],
                  v4_rule=lt_qwen)


@fixture("v5-smollm3")
def make_smollm3():
    from transformers import SmolLM3Config, SmolLM3ForCausalLM
    cfg = _cfg(SmolLM3Config, vocab_size=103, rope_parameters=dict(ROPE_1E4), no_rope_layers=[1, 0, 1],
               tie_word_embeddings=True)
    model = new_model(SmolLM3ForCausalLM, cfg, 4201)
    write_fixture("v5-smollm3", model, make_ids(4202, 14, 103, bos=1),
                  "SmolLM3: no_rope_layers [1, 0, 1] (1 = layer uses RoPE; layer 1 is NoPE), full attention "
                  "everywhere, tied head, GQA (4/2).",
                  ablations=[("no_rope_layers all 1 (RoPE everywhere)",
                              dict(cfg_edit=setattrs(no_rope_layers=[1, 1, 1])))],
                  v4_rule=lt_smollm3)


@fixture("v5-ministral")
def make_ministral():
    from transformers import MinistralConfig, MinistralForCausalLM
    cfg = _cfg(MinistralConfig, head_dim=8, vocab_size=107, rope_parameters=dict(ROPE_1E4), sliding_window=4,
               layer_types=["sliding_attention", "full_attention", "sliding_attention"])
    model = new_model(MinistralForCausalLM, cfg, 4301)
    write_fixture("v5-ministral", model, make_ids(4302, 15, 107, bos=1),
                  "Ministral: head_dim 8 given explicitly (MinistralConfig leaves head_dim null and the attention then fails), layer_types [sliding, full, sliding] with sliding_window 4 < T=15, GQA (4/2), no biases, "
                  "untied head.",
                  ablations=[("all layers full_attention", dict(cfg_edit=ALL_FULL(3)))])


def _relu2(m):
    from transformers.activations import ACT2FN
    for layer in m.model.layers:
        layer.mlp.act_fn = ACT2FN["relu2"]


@fixture("v5-arcee")
def make_arcee():
    from transformers import ArceeConfig, ArceeForCausalLM
    cfg = _cfg(ArceeConfig, vocab_size=109, max_position_embeddings=1024, hidden_act="relu2",
               rope_parameters={"rope_type": "yarn", "rope_theta": 100.0, "factor": 4.0,
                                "original_max_position_embeddings": 256})
    model = new_model(ArceeForCausalLM, cfg, 4401)
    write_fixture("v5-arcee", model, make_ids(4402, 14, 109, bos=1),
                  "Arcee (AFM): non-gated MLP down(relu(up(x))^2) (up_proj/down_proj only), yarn RoPE factor 4 with "
                  "original_max_position_embeddings 256 (theta 100), GQA (4/2).",
                  ablations=[("relu2 -> relu", dict(cfg_edit=setattrs(hidden_act="relu"))),
                             ("yarn removed", dict(cfg_edit=rope_default))])


@fixture("v5-apertus")
def make_apertus():
    from transformers import ApertusConfig, ApertusForCausalLM
    cfg = _cfg(ApertusConfig, vocab_size=113, max_position_embeddings=256, hidden_act="xielu",
               rope_parameters={"rope_type": "llama3", "rope_theta": 500.0, "factor": 4.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    model = new_model(ApertusForCausalLM, cfg, 4501)
    write_fixture("v5-apertus", model, make_ids(4502, 14, 113, bos=1),
                  "Apertus: non-gated MLP down(xielu(up(x))) with per-layer xIELU parameters in the checkpoint "
                  "(mlp.act_fn.alpha_p / alpha_n raw, softplus-applied; beta, eps buffers), q_norm/k_norm per head "
                  "before RoPE, norms named attention_layernorm / feedforward_layernorm (hook_resid_mid = "
                  "feedforward_layernorm input), llama3 RoPE (theta 500), GQA (4/2).",
                  ablations=[("xIELU -> relu2", dict(model_edit=_relu2)),
                             ("q_norm/k_norm removed", dict(model_edit=identity_modules(["q_norm", "k_norm"])))])


@fixture("v5-seed-oss")
def make_seed_oss():
    from transformers import SeedOssConfig, SeedOssForCausalLM
    cfg = _cfg(SeedOssConfig, head_dim=8, vocab_size=101, rope_parameters=dict(ROPE_1E4), attention_bias=True,
               attention_out_bias=True, mlp_bias=False)
    model = new_model(SeedOssForCausalLM, cfg, 4601)
    write_fixture("v5-seed-oss", model, make_ids(4602, 13, 101, bos=1),
                  "Seed-OSS: q/k/v biases (attention_bias) and an o_proj bias (attention_out_bias), GQA (4/2), "
                  "attention_dropout/residual_dropout 0.1 in the config (inactive in eval).",
                  ablations=[("q/k/v biases zeroed", dict(model_edit=zero_params(["q_proj.bias", "k_proj.bias",
                                                                                  "v_proj.bias"]))),
                             ("o_proj bias zeroed", dict(model_edit=zero_params(["o_proj.bias"])))])


@fixture("v5-hunyuan-dense")
def make_hunyuan():
    from transformers import HunYuanDenseV1Config, HunYuanDenseV1ForCausalLM
    cfg = _cfg(HunYuanDenseV1Config, head_dim=8, vocab_size=105,
               rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 1.0, "alpha": 50.0})
    model = new_model(HunYuanDenseV1ForCausalLM, cfg, 4701)
    write_fixture("v5-hunyuan-dense", model, make_ids(4702, 14, 105, bos=1),
                  "HunYuan dense v1: query_layernorm/key_layernorm per head applied AFTER RoPE; rope_type 'dynamic' "
                  "with alpha 50 = static NTK-alpha: base = theta * alpha^(head_dim / (head_dim - 2)), independent "
                  "of T; GQA (4/2).",
                  ablations=[("query_layernorm/key_layernorm removed",
                              dict(model_edit=identity_modules(["query_layernorm", "key_layernorm"]))),
                             ("alpha removed (plain RoPE)", dict(cfg_edit=rope_default))])


@fixture("v5-exaone4")
def make_exaone4():
    from transformers import Exaone4Config, Exaone4ForCausalLM
    cfg = _cfg(Exaone4Config, num_hidden_layers=4, vocab_size=115, rope_parameters=dict(ROPE_1E4),
               sliding_window=4, layer_types=["sliding_attention", "full_attention"] * 2, bos_token_id=0)
    model = new_model(Exaone4ForCausalLM, cfg, 4801)
    write_fixture("v5-exaone4", model, make_ids(4802, 15, 115, bos=0),
                  "EXAONE 4: no pre-norms; attention and MLP read the raw residual and their outputs pass through "
                  "post_attention_layernorm / post_feedforward_layernorm before the residual add (hook_attn_out / "
                  "hook_mlp_out are those norms' outputs, hook_resid_mid = mlp input); q_norm/k_norm per head before "
                  "RoPE; layer_types [sliding, full, sliding, full] with sliding_window 4 < T=15; RoPE only on the "
                  "sliding layers (full layers are NoPE because sliding_window is set).",
                  ablations=[("post-norms removed", dict(model_edit=identity_modules(
                                  ["post_attention_layernorm", "post_feedforward_layernorm"]))),
                             ("q_norm/k_norm removed", dict(model_edit=identity_modules(["q_norm", "k_norm"]))),
                             ("sliding_window null (all full, RoPE everywhere)",
                              dict(cfg_edit=setattrs(sliding_window=None, layer_types=["full_attention"] * 4)))],
                  v4_rule=lt_exaone4)


def _llama_rope_pairing():
    from transformers.models.ernie4_5 import modeling_ernie4_5
    from transformers.models.llama import modeling_llama
    return patch_attr(modeling_ernie4_5, "apply_rotary_pos_emb", modeling_llama.apply_rotary_pos_emb)


@fixture("v5-ernie4_5")
def make_ernie():
    from transformers import Ernie4_5Config, Ernie4_5ForCausalLM
    cfg = _cfg(Ernie4_5Config, head_dim=8, vocab_size=117, rope_parameters=dict(ROPE_1E4), use_bias=True,
               tie_word_embeddings=True)
    model = new_model(Ernie4_5ForCausalLM, cfg, 4901)
    write_fixture("v5-ernie4_5", model, make_ids(4902, 14, 117, bos=1),
                  "ERNIE 4.5: RoPE on interleaved pairs (dims 2i, 2i+1 rotate together; cos/sin "
                  "repeat_interleave'd), use_bias true (biases on q/k/v/o and gate/up/down), tied head, GQA (4/2).",
                  ablations=[("rotate_half pairing (Llama) instead of interleaved", dict(patch=_llama_rope_pairing)),
                             ("all biases zeroed", dict(model_edit=zero_params([".bias"])))])


@fixture("v5-glm4")
def make_glm4():
    from transformers import Glm4Config, Glm4ForCausalLM
    cfg = _cfg(Glm4Config, head_dim=8, vocab_size=119, attention_bias=True, eos_token_id=2,
               rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})
    model = new_model(Glm4ForCausalLM, cfg, 5001)
    write_fixture("v5-glm4", model, make_ids(5002, 14, 119, bos=1),
                  "GLM-4: sandwich norms (input_layernorm -> attn -> post_self_attn_layernorm -> add; "
                  "post_attention_layernorm -> mlp -> post_mlp_layernorm -> add; hook_attn_out / hook_mlp_out are "
                  "the post-norm outputs, hook_resid_mid = post_attention_layernorm input), fused gate_up_proj "
                  "(first half gate, second half up, silu(gate) * up), partial_rotary_factor 0.5 with interleaved "
                  "pairs on the first 4 of 8 head dims, q/k/v biases (no o_proj bias), GQA (4/2).",
                  ablations=[("post-norms removed", dict(model_edit=identity_modules(
                                  ["post_self_attn_layernorm", "post_mlp_layernorm"]))),
                             ("partial_rotary_factor 0.5 -> 1.0",
                              dict(cfg_edit=set_rope(partial_rotary_factor=1.0))),
                             ("q/k/v biases zeroed", dict(model_edit=zero_params(["q_proj.bias", "k_proj.bias",
                                                                                  "v_proj.bias"])))])


@fixture("v5-granite")
def make_granite():
    from transformers import GraniteConfig, GraniteForCausalLM
    cfg = _cfg(GraniteConfig, vocab_size=121, rope_parameters=dict(ROPE_1E4), embedding_multiplier=3.0,
               attention_multiplier=0.25, residual_multiplier=0.5, logits_scaling=4.0)
    model = new_model(GraniteForCausalLM, cfg, 5101)
    write_fixture("v5-granite", model, make_ids(5102, 14, 121, bos=1),
                  "Granite: embeddings times embedding_multiplier 3; attention scores scaled by attention_multiplier "
                  "0.25 instead of 1/sqrt(head_dim); each sub-layer output times residual_multiplier 0.5 before the "
                  "add (hook_attn_out / hook_mlp_out include it); logits = lm_head(norm(x)) / logits_scaling 4 (the "
                  "lens applies the same division); GQA (4/2).",
                  ablations=[("embedding_multiplier -> 1", dict(cfg_edit=setattrs(embedding_multiplier=1.0))),
                             ("attention_multiplier -> 1/sqrt(head_dim)",
                              dict(cfg_edit=setattrs(attention_multiplier=8 ** -0.5))),
                             ("residual_multiplier -> 1", dict(cfg_edit=setattrs(residual_multiplier=1.0))),
                             ("logits_scaling -> 1", dict(cfg_edit=setattrs(logits_scaling=1.0)))])


def _gemma_norms_near_one(model):
    """(1 + w) norms: store w ~ U(-0.1, 0.1) so the gains are ~1 (see make_gemma), embeddings N(0, 0.1)."""
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(0.5)
        for n, p in model.named_parameters():
            if "norm" in n:
                p.sub_(1.0)


def lt_gemma2(d):
    lt = d.pop("layer_types")
    assert lt == ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(len(lt))], lt
    d["hidden_act"] = "gelu_pytorch_tanh"  # release configs carry both; Gemma 2 reads hidden_activation only
    d["cache_implementation"] = "hybrid"
    return "layer_types dropped (the default alternation); + hidden_act and cache_implementation as in release configs"


@fixture("v5-gemma2")
def make_gemma2():
    from transformers import Gemma2Config, Gemma2ForCausalLM
    cfg = _cfg(Gemma2Config, num_hidden_layers=4, head_dim=16, vocab_size=127, rope_parameters=dict(ROPE_1E4),
               hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24, sliding_window=4,
               attn_logit_softcapping=2.0, final_logit_softcapping=1.5, tie_word_embeddings=True, bos_token_id=2,
               eos_token_id=1)
    model = new_model(Gemma2ForCausalLM, cfg, 5201)
    _gemma_norms_near_one(model)

    def plain_norms(m):
        with torch.no_grad():
            for n, p in m.named_parameters():
                if "norm" in n:
                    p.sub_(1.0)

    write_fixture("v5-gemma2", model, make_ids(5202, 14, 127, bos=2),
                  "Gemma 2: sandwich norms (input_layernorm -> attn -> post_attention_layernorm -> add; "
                  "pre_feedforward_layernorm -> mlp -> post_feedforward_layernorm -> add; hook_attn_out / hook_mlp_out "
                  "are the post-norm outputs, hook_resid_mid = pre_feedforward_layernorm input), RMSNorm by (1 + w) "
                  "with stored w ~ U(-0.1, 0.1), embeddings N(0, 0.1) times sqrt(32), attention scores scaled by "
                  "query_pre_attn_scalar 24 ** -0.5 (head_dim 16) and soft-capped tanh(s / 2) * 2 before the mask, "
                  "logits soft-capped tanh(x / 1.5) * 1.5 (the lens reads every layer through it), default "
                  "layer_types [sliding, full, sliding, full] with sliding_window 4 < T=14, tanh GeGLU, tied head, "
                  "GQA (4/2).",
                  ablations=[("attn_logit_softcapping removed", dict(cfg_edit=setattrs(attn_logit_softcapping=None))),
                             ("final_logit_softcapping removed",
                              dict(cfg_edit=setattrs(final_logit_softcapping=None))),
                             ("post-norms removed", dict(model_edit=identity_modules(
                                 ["post_attention_layernorm", "post_feedforward_layernorm"]))),
                             ("query_pre_attn_scalar 24 -> 16", dict(cfg_edit=setattrs(query_pre_attn_scalar=16))),
                             ("all layers full_attention", dict(cfg_edit=ALL_FULL(4))),
                             ("norms x*w instead of x*(1+w)", dict(model_edit=plain_norms))],
                  v4_rule=lt_gemma2)


def lt_gemma3(d):
    lt = d.pop("layer_types")
    d.pop("_sliding_window_pattern", None)
    for p in range(1, len(lt) + 1):
        if lt == ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(len(lt))]:
            d["sliding_window_pattern"] = p
            d["cache_implementation"] = "hybrid"
            return f"layer_types -> sliding_window_pattern {p}; + cache_implementation"
    raise AssertionError(lt)


def _gemma3_rope(local_theta, full):
    def edit(cfg):
        cfg.rope_parameters = {"sliding_attention": {"rope_type": "default", "rope_theta": local_theta},
                               "full_attention": dict(full)}
    return edit


@fixture("v5-gemma3-text")
def make_gemma3_text():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    full = {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}
    cfg = _cfg(Gemma3TextConfig, num_hidden_layers=4, head_dim=16, vocab_size=131,
               rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
                                "full_attention": dict(full)},
               layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
               query_pre_attn_scalar=24, sliding_window=4, final_logit_softcapping=2.0, tie_word_embeddings=True,
               bos_token_id=2, eos_token_id=1)
    model = new_model(Gemma3ForCausalLM, cfg, 5301)
    _gemma_norms_near_one(model)
    write_fixture("v5-gemma3-text", model, make_ids(5302, 15, 131, bos=2),
                  "Gemma 3 text: Gemma 2's sandwich norms, (1 + w) RMSNorm (stored w ~ U(-0.1, 0.1)), sqrt(32) "
                  "embeddings (N(0, 0.1)), query_pre_attn_scalar 24 (head_dim 16), plus per-head q_norm/k_norm "
                  "((1 + w) RMSNorm over head_dim) before RoPE; layer_types [sliding, sliding, full, sliding] "
                  "(sliding_window_pattern 3) with sliding_window 4 < T=15; sliding layers rotate with "
                  "rope_parameters.sliding_attention (default, theta 100), the full layer with "
                  "rope_parameters.full_attention (linear factor 2, theta 1e4); final_logit_softcapping 2 (the lens "
                  "reads every layer through it); no attention soft-capping; tied head; GQA (4/2).",
                  ablations=[("q_norm/k_norm removed", dict(model_edit=identity_modules(["q_norm", "k_norm"]))),
                             ("sliding layers use the full-attention rope",
                              dict(cfg_edit=_gemma3_rope(10000.0, full))),
                             ("full layer without linear scaling",
                              dict(cfg_edit=_gemma3_rope(100.0, {"rope_type": "default", "rope_theta": 10000.0}))),
                             ("final_logit_softcapping removed",
                              dict(cfg_edit=setattrs(final_logit_softcapping=None))),
                             ("all layers full_attention", dict(cfg_edit=ALL_FULL(4)))],
                  v4_rule=lt_gemma3)


@fixture("v5-olmo2")
def make_olmo2():
    from transformers import Olmo2Config, Olmo2ForCausalLM
    cfg = _cfg(Olmo2Config, vocab_size=137, rope_parameters=dict(ROPE_1E4), rms_norm_eps=1e-5, pad_token_id=1,
               eos_token_id=2, bos_token_id=None)
    model = new_model(Olmo2ForCausalLM, cfg, 5401)
    write_fixture("v5-olmo2", model, make_ids(5402, 14, 137, lo=3),
                  "OLMo 2: no pre-norms; attention and MLP read the raw residual and their outputs pass through "
                  "post_attention_layernorm / post_feedforward_layernorm before the add (hook_attn_out / hook_mlp_out "
                  "are those norms' outputs, hook_resid_mid = mlp input); q_norm / k_norm are RMSNorms over the whole "
                  "q (4 x 8 = 32) and k (2 x 8 = 16) projections before the head split and RoPE; GQA (4/2), untied head.",
                  ablations=[("post-norms removed", dict(model_edit=identity_modules(
                                  ["post_attention_layernorm", "post_feedforward_layernorm"]))),
                             ("q_norm/k_norm removed", dict(model_edit=identity_modules(["q_norm", "k_norm"]))),
                             ("q/k norm per head instead of over the projection", dict(model_edit=_per_head_qk_norm))])


class _PerHeadRMSNorm(nn.Module):
    def __init__(self, norm, head_dim):
        super().__init__()
        self.norm, self.head_dim = norm, head_dim

    def forward(self, x):
        shape = x.shape
        h = x.view(*shape[:-1], -1, self.head_dim)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.norm.variance_epsilon)
        return h.view(shape) * self.norm.weight


def _per_head_qk_norm(model):
    for layer in model.model.layers:
        a = layer.self_attn
        a.q_norm = _PerHeadRMSNorm(a.q_norm, a.head_dim)
        a.k_norm = _PerHeadRMSNorm(a.k_norm, a.head_dim)


def lt_olmo3(d):
    lt = d.pop("layer_types")
    assert lt == ["sliding_attention" if (i + 1) % 4 else "full_attention" for i in range(len(lt))], lt
    return "layer_types dropped (the default: every 4th layer full)"


@fixture("v5-olmo3")
def make_olmo3():
    from transformers import Olmo3Config, Olmo3ForCausalLM
    cfg = _cfg(Olmo3Config, num_hidden_layers=4, vocab_size=139, sliding_window=4, rms_norm_eps=1e-5,
               rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 500000.0},
                                "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 100.0}},
               pad_token_id=1, eos_token_id=2, bos_token_id=None)
    model = new_model(Olmo3ForCausalLM, cfg, 5501)

    def same_rope(c):
        c.rope_parameters = {"sliding_attention": {"rope_type": "default", "rope_theta": 500000.0},
                             "full_attention": {"rope_type": "default", "rope_theta": 500000.0}}

    write_fixture("v5-olmo3", model, make_ids(5502, 15, 139, lo=3),
                  "OLMo 3: OLMo 2's block (post-norms only, q/k RMSNorm over the whole projections) with the default "
                  "layer_types [sliding, sliding, sliding, full] and sliding_window 4 < T=15; sliding layers rotate "
                  "with rope_parameters.sliding_attention (theta 5e5), the full layer with full_attention (linear "
                  "factor 2, theta 100); in the 4.x layout rope_theta sets only the full layers' theta (the sliding "
                  "ones keep 5e5); GQA (4/2), untied head.",
                  ablations=[("all layers full_attention", dict(cfg_edit=ALL_FULL(4))),
                             ("one rope for all layers (default, theta 5e5)", dict(cfg_edit=same_rope)),
                             ("q_norm/k_norm removed", dict(model_edit=identity_modules(["q_norm", "k_norm"])))],
                  v4_rule=lt_olmo3)


@fixture("v5-olmo")
def make_olmo():
    from transformers import OlmoConfig, OlmoForCausalLM
    cfg = _cfg(OlmoConfig, vocab_size=149, rope_parameters=dict(ROPE_1E4), clip_qkv=1.5, pad_token_id=1,
               eos_token_id=2, bos_token_id=None)
    del cfg.rms_norm_eps  # not an OLMo key (_cfg passes it to every family)
    model = new_model(OlmoForCausalLM, cfg, 5601)

    def norm_with_gain(m):  # a LayerNorm whose output is scaled by 2: proves the norms carry no weights
        for layer in m.model.layers:
            layer.input_layernorm = _Scaled(layer.input_layernorm, 2.0)

    write_fixture("v5-olmo", model, make_ids(5602, 14, 149, lo=3),
                  "OLMo 1: LayerNorms without weight or bias (eps 1e-5; no norm tensors in the checkpoint), "
                  "clip_qkv 1.5 clamps q, k and v after their projections (before RoPE), SwiGLU, GQA (4/2), "
                  "untied head.",
                  ablations=[("clip_qkv removed", dict(cfg_edit=setattrs(clip_qkv=None))),
                             ("input norms times 2", dict(model_edit=norm_with_gain))])


class _Scaled(nn.Module):
    def __init__(self, inner, k):
        super().__init__()
        self.inner, self.k = inner, k

    def forward(self, x):
        return self.inner(x) * self.k


def lt_phi3(d):
    """4.x Phi-3 configs: rope_scaling {"type": "longrope", short_factor, long_factor},
    original_max_position_embeddings and partial_rotary_factor at the top level. (The older name "su" is not loadable
    by transformers 5.23 this way: it standardises before renaming, so longrope's required
    original_max_position_embeddings is missing from the dict.)"""
    rs = d["rope_scaling"]
    d["original_max_position_embeddings"] = rs.pop("original_max_position_embeddings")
    rs.pop("rope_type")
    return "rope_scaling with 'type' only, original_max_position_embeddings at top level"


def _phi3_swap_kv(model):
    with torch.no_grad():
        for layer in model.model.layers:
            w = layer.self_attn.qkv_proj.weight  # q (32) | k (16) | v (16)
            k, v = w[32:48].clone(), w[48:64].clone()
            w[32:48], w[48:64] = v, k


def _phi3_swap_gate_up(model):
    with torch.no_grad():
        for layer in model.model.layers:
            w = layer.mlp.gate_up_proj.weight
            f = w.shape[0] // 2
            g, u = w[:f].clone(), w[f:].clone()
            w[:f], w[f:] = u, g


@fixture("v5-phi3")
def make_phi3():
    from transformers import Phi3Config, Phi3ForCausalLM
    short = [1.0, 1.2, 1.5, 2.0]
    long = [1.0, 2.0, 4.0, 8.0]
    cfg = _cfg(Phi3Config, num_attention_heads=2, num_key_value_heads=1, vocab_size=151, rms_norm_eps=1e-5,
               max_position_embeddings=64, original_max_position_embeddings=16, sliding_window=6,
               rope_parameters={"rope_type": "longrope", "rope_theta": 1000.0, "partial_rotary_factor": 0.5,
                                "short_factor": short, "long_factor": long},
               pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = new_model(Phi3ForCausalLM, cfg, 5701)
    write_fixture("v5-phi3", model, make_ids(5702, 20, 151, bos=1),
                  "Phi-3: fused qkv_proj (rows q 32 | k 16 | v 16) and gate_up_proj (rows gate | up), head_dim 16 with "
                  "partial_rotary_factor 0.5 (8 rotary dims), longrope with T=20 > original_max_position_embeddings "
                  "16 (long factors; attention_factor sqrt(1 + ln 4 / ln 16)), sliding_window 6 < T on every layer, "
                  "GQA (2/1), untied head.",
                  ablations=[("long_factor replaced by short_factor", dict(cfg_edit=set_rope(long_factor=short))),
                             ("partial_rotary_factor 0.5 -> 1.0 (with 8 factors)",
                              dict(cfg_edit=set_rope(partial_rotary_factor=1.0, short_factor=short * 2,
                                                     long_factor=long * 2))),
                             ("sliding_window removed", dict(cfg_edit=setattrs(sliding_window=None))),
                             ("k and v rows of qkv_proj swapped", dict(model_edit=_phi3_swap_kv)),
                             ("gate and up halves of gate_up_proj swapped", dict(model_edit=_phi3_swap_gate_up))],
                  v4_rule=lt_phi3)


@fixture("v5-phi")
def make_phi():
    from transformers import PhiConfig, PhiForCausalLM
    cfg = PhiConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                    num_key_value_heads=2, vocab_size=157, max_position_embeddings=64, layer_norm_eps=1e-5,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
                    hidden_act="gelu_new", qk_layernorm=True, tie_word_embeddings=False, bos_token_id=1,
                    eos_token_id=2)
    model = new_model(PhiForCausalLM, cfg, 5801)
    write_fixture("v5-phi", model, make_ids(5802, 14, 157, bos=1),
                  "Phi: parallel block x + attn(ln(x)) + mlp(ln(x)) on one input_layernorm (LayerNorm with bias; no "
                  "hook_resid_mid), biases on q/k/v/dense/fc1/fc2 and on lm_head, head_dim 16 with "
                  "partial_rotary_factor 0.5 (8 rotary dims, rotate_half), qk_layernorm (per-head LayerNorm with "
                  "weight and bias over head_dim, before RoPE), ungated gelu_new MLP, untied head.",
                  ablations=[("partial_rotary_factor 0.5 -> 1.0", dict(cfg_edit=set_rope(partial_rotary_factor=1.0))),
                             ("q/k layernorms removed",
                              dict(model_edit=identity_modules(["q_layernorm", "k_layernorm"]))),
                             ("lm_head bias zeroed", dict(model_edit=zero_params(["lm_head.bias"])))])


@fixture("v5-starcoder2")
def make_starcoder2():
    from transformers import Starcoder2Config, Starcoder2ForCausalLM
    cfg = _cfg(Starcoder2Config, vocab_size=163, rope_parameters=dict(ROPE_1E4), norm_epsilon=1e-5,
               hidden_act="gelu_pytorch_tanh", use_bias=True, sliding_window=5, tie_word_embeddings=True,
               bos_token_id=0, eos_token_id=0, residual_dropout=0.1, embedding_dropout=0.1)
    del cfg.rms_norm_eps  # not a StarCoder2 key (_cfg passes it to every family)
    model = new_model(Starcoder2ForCausalLM, cfg, 5901)
    write_fixture("v5-starcoder2", model, make_ids(5902, 14, 163, lo=1),
                  "StarCoder2: LayerNorms with bias (norm_epsilon), ungated MLP c_proj(gelu_pytorch_tanh(c_fc(x))), "
                  "use_bias: biases on q/k/v/o and c_fc/c_proj, sliding_window 5 < T=14 on every layer, GQA (4/2), "
                  "tied head; residual/embedding dropout 0.1 in the config (inactive in eval).",
                  ablations=[("sliding_window removed", dict(cfg_edit=setattrs(sliding_window=None))),
                             ("all biases zeroed", dict(model_edit=zero_params(["proj.bias", "c_fc.bias"]))),
                             ("layernorm biases zeroed", dict(model_edit=zero_params(["layernorm.bias", "norm.bias"])))])


def _stablelm(name, parallel, seed):
    from transformers import StableLmConfig, StableLmForCausalLM
    cfg = StableLmConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=191, max_position_embeddings=64, layer_norm_eps=1e-5,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
                         use_qkv_bias=True, qk_layernorm=True, use_parallel_residual=parallel,
                         tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    model = new_model(StableLmForCausalLM, cfg, seed)
    write_fixture(name, model, make_ids(seed + 1, 14, 191, lo=0),
                  f"StableLM: use_parallel_residual {parallel} "
                  + ("(x + attn(ln(x)) + mlp(ln(x)) on input_layernorm alone, no hook_resid_mid)" if parallel else
                     "(sequential, hook_resid_mid = post_attention_layernorm input)")
                  + ", LayerNorms with bias, head_dim 8 with partial_rotary_factor 0.5 (4 rotary dims, rotate_half), "
                  "use_qkv_bias, qk_layernorm: a LayerNorm (gain only) per q / k head with its own weights "
                  "(q_layernorm.norms.{h}), SwiGLU, GQA (4/2), untied head.",
                  ablations=[("partial_rotary_factor 0.5 -> 1.0", dict(cfg_edit=set_rope(partial_rotary_factor=1.0))),
                             ("q/k layernorms removed",
                              dict(model_edit=identity_modules(["q_layernorm", "k_layernorm"]))),
                             ("q/k/v biases zeroed", dict(model_edit=zero_params(["q_proj.bias", "k_proj.bias",
                                                                                  "v_proj.bias"])))])


FIXTURES["v5-stablelm"] = lambda: _stablelm("v5-stablelm", False, 6401)


FIXTURES["v5-stablelm-parallel"] = lambda: _stablelm("v5-stablelm-parallel", True, 6501)


def _rotate_half_pairing(module_name):
    def patch():
        import importlib
        from transformers.models.llama import modeling_llama
        mod = importlib.import_module(f"transformers.models.{module_name}.modeling_{module_name}")
        return patch_attr(mod, "rotate_half", modeling_llama.rotate_half)
    return patch


@fixture("v5-cohere")
def make_cohere():
    from transformers import CohereConfig, CohereForCausalLM
    cfg = CohereConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=167, max_position_embeddings=64, layer_norm_eps=1e-5,
                       rope_parameters=dict(ROPE_1E4), logit_scale=0.5, use_qk_norm=True, attention_bias=True,
                       tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = new_model(CohereForCausalLM, cfg, 6001)
    write_fixture("v5-cohere", model, make_ids(6002, 14, 167, bos=1),
                  "Cohere (Command-R): parallel block x + attn(ln(x)) + mlp(ln(x)) on one mean-centred LayerNorm "
                  "without bias (no hook_resid_mid), RoPE on interleaved pairs (2i, 2i+1), use_qk_norm: LayerNorm of "
                  "each q/k head with a gain per head (weights (4, 8) and (2, 8)) before RoPE, attention_bias "
                  "(q/k/v/o biases), logits times logit_scale 0.5 (the lens applies it too), SwiGLU, tied head, "
                  "GQA (4/2).",
                  ablations=[("logit_scale -> 1", dict(cfg_edit=setattrs(logit_scale=1.0))),
                             ("rotate_half pairing instead of interleaved",
                              dict(patch=_rotate_half_pairing("cohere"))),
                             ("q/k norms removed", dict(model_edit=identity_modules(["q_norm", "k_norm"]))),
                             ("attention biases zeroed", dict(model_edit=zero_params(["proj.bias"])))])


def lt_cohere2(d):
    lt = d.pop("layer_types")
    assert lt == ["sliding_attention" if (i + 1) % 4 else "full_attention" for i in range(len(lt))], lt
    d.pop("head_dim", None)
    return "layer_types dropped (the default: every 4th layer full); head_dim dropped"


@fixture("v5-cohere2")
def make_cohere2():
    from transformers import Cohere2Config, Cohere2ForCausalLM
    cfg = Cohere2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=173, max_position_embeddings=64, layer_norm_eps=1e-5,
                        rope_parameters=dict(ROPE_1E4), logit_scale=0.5, sliding_window=4,
                        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = new_model(Cohere2ForCausalLM, cfg, 6101)

    def rope_everywhere():
        from transformers.models.cohere2 import modeling_cohere2
        orig = modeling_cohere2.Cohere2Attention.forward

        def fwd(self, *a, **k):
            sw = self.sliding_window
            self.sliding_window = sw if sw is not None else 10 ** 6  # rotate on full layers too (window too big to bite)
            try:
                return orig(self, *a, **k)
            finally:
                self.sliding_window = sw
        return patch_attr(modeling_cohere2.Cohere2Attention, "forward", fwd)

    write_fixture("v5-cohere2", model, make_ids(6102, 15, 173, bos=1),
                  "Cohere 2: Cohere's parallel block (one LayerNorm without bias), interleaved RoPE and logit_scale 0.5, "
                  "no q/k norms; default layer_types [sliding, sliding, sliding, full] (sliding_window_pattern 4): "
                  "sliding layers use sliding_window 4 < T=15 and RoPE, the full layer neither; head_dim = 32 / 4; "
                  "SwiGLU, tied head, GQA (4/2).",
                  ablations=[("all layers full_attention (no window, no RoPE)", dict(cfg_edit=ALL_FULL(4))),
                             ("RoPE on the full layer too", dict(patch=rope_everywhere)),
                             ("logit_scale -> 1", dict(cfg_edit=setattrs(logit_scale=1.0)))],
                  v4_rule=lt_cohere2)


@fixture("v5-gptj")
def make_gptj():
    from transformers import GPTJConfig, GPTJForCausalLM
    cfg = GPTJConfig(n_embd=32, n_layer=3, n_head=2, n_inner=64, rotary_dim=8, vocab_size=179, n_positions=64,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=False,
                     bos_token_id=0, eos_token_id=0)
    model = new_model(GPTJForCausalLM, cfg, 6201, norm_names=("ln_",))

    def rotate_half(m):
        from transformers.models.gptj import modeling_gptj

        def every_two_as_half(x):
            h = x.shape[-1] // 2
            return torch.cat((-x[..., h:], x[..., :h]), dim=-1)
        return patch_attr(modeling_gptj, "rotate_every_two", every_two_as_half)

    write_fixture("v5-gptj", model, make_ids(6202, 14, 179, lo=0),
                  "GPT-J: parallel block x + attn(ln_1(x)) + mlp(ln_1(x)) (no hook_resid_mid), q/k/v/out_proj without "
                  "biases, head_dim 16 with rotary_dim 8 rotating interleaved pairs (2i, 2i+1) (a fixed sin/cos "
                  "table, theta 10000), ungated gelu_new MLP "
                  "fc_in/fc_out with biases, untied lm_head with a bias.",
                  ablations=[("rotary_dim 8 -> 16", dict(cfg_edit=setattrs(rotary_dim=16))),
                             ("rotate_half instead of interleaved pairs", dict(patch=lambda: rotate_half(None))),
                             ("lm_head bias zeroed", dict(model_edit=zero_params(["lm_head.bias"])))],
                  v4_skip="GPT-J's config keys did not change between 4.x and 5.x")


@fixture("v5-gpt-neo")
def make_gpt_neo():
    from transformers import GPTNeoConfig, GPTNeoForCausalLM
    cfg = GPTNeoConfig(hidden_size=32, num_layers=3, num_heads=4, intermediate_size=64, vocab_size=181,
                       max_position_embeddings=64, attention_types=[[["local", "global", "local"], 1]], window_size=4,
                       activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                       bos_token_id=0, eos_token_id=0)
    # GPT-Neo scores are not divided by sqrt(head_dim): weights 0.1 keep them moderate.
    model = new_model(GPTNeoForCausalLM, cfg, 6301, norm_names=("ln_",))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(0.5)
    write_fixture("v5-gpt-neo", model, make_ids(6302, 14, 181, lo=0),
                  "GPT-Neo: learned positions, LayerNorms with bias, q/k/v without biases (q/k weights N(0, 0.1)), "
                  "out_proj with bias, attention scores NOT scaled by 1/sqrt(head_dim), attention_types "
                  "[[[local, global, local], 1]] with window_size 4 < T=14 on the local layers, gelu_new MLP "
                  "c_fc/c_proj with biases, tied head.",
                  ablations=[("all layers global", dict(cfg_edit=setattrs(attention_types=[[["global"], 3]],
                                                                          attention_layers=["global"] * 3))),
                             ("positions zeroed", dict(model_edit=zero_params(["wpe.weight"])))],
                  v4_skip="GPT-Neo's config keys did not change between 4.x and 5.x")


def _falcon(name, seed, note, **kw):
    from transformers import FalconConfig, FalconForCausalLM
    cfg = FalconConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, ffn_hidden_size=64,
                       vocab_size=193, max_position_embeddings=64, layer_norm_epsilon=1e-5,
                       rope_parameters=dict(ROPE_1E4), activation="gelu", tie_word_embeddings=True,
                       bos_token_id=0, eos_token_id=0, **kw)
    model = new_model(FalconForCausalLM, cfg, seed, norm_names=("ln_", "layernorm"))
    write_fixture(name, model, make_ids(seed + 1, 14, 193, lo=0),
                  "Falcon: LayerNorms with bias, rotate_half RoPE, exact gelu MLP dense_h_to_4h/dense_4h_to_h, tied "
                  "head; " + note,
                  ablations=[("query_key_value rows read as plain q | k | v", dict(model_edit=_falcon_plain_qkv))]
                  if kw.get("new_decoder_architecture") or not kw.get("multi_query", True) else
                  [("rope_theta 1e4 -> 10", dict(cfg_edit=set_rope(rope_theta=10.0)))])


def _falcon_plain_qkv(model):
    """Permute query_key_value's rows so that the model reads them as if the file stored q | k | v."""
    cfg = model.config
    H, dh = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    kv = cfg.num_kv_heads if cfg.new_decoder_architecture else H
    rep = H // kv
    with torch.no_grad():
        for layer in model.transformer.h:
            lin = layer.self_attention.query_key_value
            w = lin.weight.view(kv, rep + 2, dh, -1)
            flat = torch.cat([w[:, :rep].reshape(-1, w.shape[-1]), w[:, rep].reshape(-1, w.shape[-1]),
                              w[:, rep + 1].reshape(-1, w.shape[-1])])
            lin.weight.copy_(flat)


FIXTURES["v5-falcon-mq"] = lambda: _falcon(
    "v5-falcon-mq", 6601, "Falcon-7B layout: multi_query (one key/value head; query_key_value rows q 32 | k 8 | v 8), "
    "parallel_attn on one input_layernorm (no hook_resid_mid), no biases.", multi_query=True, parallel_attn=True,
    bias=False)


FIXTURES["v5-falcon-new"] = lambda: _falcon(
    "v5-falcon-new", 6701, "Falcon-40B layout: new_decoder_architecture with num_kv_heads 2 (query_key_value rows "
    "per kv group [q q | k | v]), two parallel norms ln_attn / ln_mlp, biases (bias: true).",
    new_decoder_architecture=True, num_kv_heads=2, parallel_attn=True, bias=True)


FIXTURES["v5-falcon-seq"] = lambda: _falcon(
    "v5-falcon-seq", 6801, "multi_query false: query_key_value rows per head [q_h | k_h | v_h]; parallel_attn false "
    "(sequential, hook_resid_mid = post_attention_layernorm input); biases.", multi_query=False, parallel_attn=False,
    bias=True)


def main():
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}", file=sys.stderr)
    names = sys.argv[1:] or list(FIXTURES)
    unknown = [n for n in names if n not in FIXTURES]
    if unknown:
        sys.exit(f"unknown fixture(s) {unknown}; known: {list(FIXTURES)}")
    os.makedirs(OUT_ROOT, exist_ok=True)
    for n in names:
        FIXTURES[n]()


if __name__ == "__main__":
    main()
