// Phi (PhiForCausalLM: phi-1, phi-1.5, phi-2): a parallel block on one LayerNorm,
// x + attn(ln(x)) + mlp(ln(x)), with biases on every projection (q/k/v, dense, fc1/fc2) and on the
// head, partial rotary (partial_rotary_factor, default 0.5, rotate_half on the first dims), an
// ungated gelu_new MLP and, with qk_layernorm, a per-head LayerNorm (weight and bias over d_head)
// of queries and keys before the rotation. Quirk: the block's single input_layernorm serves both
// sub-layers, so it is loaded into both norm slots (the same tensors).
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_phi(ConfigReader& c) {
  RopeDefaults rd;
  rd.partial = 0.5;  // PhiConfig: kwargs.setdefault("partial_rotary_factor", 0.5)
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false, rd, /*partial_rotary_ok=*/true);
  cfg.architecture = "phi";
  cfg.hf_architecture = "PhiForCausalLM";
  const std::string act = cfg_str_or(c, "hidden_act", "gelu_new");
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    cfg.mlp = MlpKind::kGeluTanh;
  } else if (act == "gelu") {
    cfg.mlp = MlpKind::kGelu;
  } else {
    throw ModelError("config.json: hidden_act '" + act + "' is not supported for Phi (gelu_new, gelu)");
  }
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "layer_norm_eps", 1e-5);
  cfg.parallel_attn = true;
  cfg.qkv_bias = cfg.o_bias = cfg.mlp_bias = true;  // PhiAttention / PhiMLP always have biases
  if (cfg_bool_or(c, "qk_layernorm", false)) {
    cfg.qk_norm = QkNorm::kPerHeadBeforeRope;
    cfg.qk_norm_type = NormKind::kLayerNorm;
  }
  return cfg;
}

ModelWeights load_phi(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in) {
    return LinearWeights{ck.get(name + ".weight", {out, in}), ck.get(name + ".bias", {out})};
  };
  auto norm = [&](const std::string& name, int64_t n) {
    return NormWeights{ck.get(name + ".weight", {n}), ck.get(name + ".bias", {n})};
  };
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1 = norm(b + "input_layernorm", d);
    lw.ln2 = lw.ln1;  // one norm feeds both sub-layers
    lw.q = lin(b + "self_attn.q_proj", dq, d);
    lw.k = lin(b + "self_attn.k_proj", dkv, d);
    lw.v = lin(b + "self_attn.v_proj", dkv, d);
    lw.o = lin(b + "self_attn.dense", d, dq);
    if (cfg.qk_norm != QkNorm::kNone) {
      lw.q_norm = norm(b + "self_attn.q_layernorm", cfg.d_head);
      lw.k_norm = norm(b + "self_attn.k_layernorm", cfg.d_head);
    }
    lw.up = lin(b + "mlp.fc1", f, d);
    lw.down = lin(b + "mlp.fc2", d, f);
    w.layers.push_back(lw);
  }
  w.ln_f = norm("model.final_layernorm", d);
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  w.unembed.b = ck.get("lm_head.bias", {cfg.vocab_size});  // the head always has a bias
  return w;
}

}  // namespace

ArchSpec phi_arch() { return {"phi", {"PhiForCausalLM"}, parse_phi, load_phi}; }

}  // namespace lens
