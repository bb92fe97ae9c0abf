// EXAONE 4 (Exaone4ForCausalLM): no norm before the sub-layers, one after each
// (x + post_attention_layernorm(attn(x)), x + post_feedforward_layernorm(mlp(x))), per-head q/k
// RMSNorm before the rotation, and hybrid layers: sliding_attention layers use a window and RoPE,
// full_attention layers use neither RoPE nor a window when sliding_window is set (all layers rotate
// when it is null). layer_types default: every sliding_window_pattern-th layer is full.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_exaone4(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "exaone4";
  cfg.hf_architecture = "Exaone4ForCausalLM";
  read_silu_act(c, cfg, "EXAONE 4");
  cfg.norm_placement = NormPlacement::kPost;
  cfg.qk_norm = QkNorm::kPerHeadBeforeRope;
  const bool has_key = c.json().contains("sliding_window");
  const int64_t window = has_key ? cfg_int_or(c, "sliding_window", 0) : 4096;
  std::vector<std::string> types = read_layer_types(c, cfg.n_layer);
  const auto& pattern = c.raw("sliding_window_pattern");
  if (types.empty()) {
    if (window <= 0) {
      throw ModelError("config.json: sliding_window is null and layer_types is absent (transformers divides by a "
                       "sliding_window_pattern of 0 there)");
    }
    const int64_t p = pattern.is_null() ? 4 : pattern.is_number_integer() ? pattern.get<int64_t>() : -1;
    if (p <= 0)
      throw ModelError("config.json: sliding_window_pattern " + pattern.dump() +
                       " without layer_types is not read by transformers 5 (it needs an integer > 0)");
    for (int64_t l = 0; l < cfg.n_layer; ++l) types.push_back((l + 1) % p != 0 ? "sliding_attention" : "full_attention");
  }
  set_layer_windows(cfg, types, window, 0);
  for (int64_t l = 0; l < cfg.n_layer; ++l)
    cfg.layers[l].rotary = window <= 0 || types[l] == "sliding_attention";
  return cfg;
}

ModelWeights load_exaone4(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1.w = ck.get(b + "post_attention_layernorm.weight", {d});  // kPost: after the attention
    lw.ln2.w = ck.get(b + "post_feedforward_layernorm.weight", {d});
    lw.q.w = ck.get(b + "self_attn.q_proj.weight", {dq, d});
    lw.k.w = ck.get(b + "self_attn.k_proj.weight", {dkv, d});
    lw.v.w = ck.get(b + "self_attn.v_proj.weight", {dkv, d});
    lw.o.w = ck.get(b + "self_attn.o_proj.weight", {d, dq});
    lw.q_norm.w = ck.get(b + "self_attn.q_norm.weight", {cfg.d_head});
    lw.k_norm.w = ck.get(b + "self_attn.k_norm.weight", {cfg.d_head});
    lw.gate.w = ck.get(b + "mlp.gate_proj.weight", {f, d});
    lw.up.w = ck.get(b + "mlp.up_proj.weight", {f, d});
    lw.down.w = ck.get(b + "mlp.down_proj.weight", {d, f});
    w.layers.push_back(lw);
  }
  w.ln_f.w = ck.get("model.norm.weight", {d});
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec exaone4_arch() { return {"exaone4", {"Exaone4ForCausalLM"}, parse_exaone4, load_exaone4}; }

}  // namespace lens
