// OLMo 2 (Olmo2ForCausalLM) and OLMo 3 (Olmo3ForCausalLM): the LLaMA layout with no norm before the
// sub-layers and one after each (x + post_attention_layernorm(attn(x)), x +
// post_feedforward_layernorm(mlp(x))), and q / k RMSNorm over the whole projection (q_norm of size
// n_head * d_head, k_norm of n_head_kv * d_head) before the heads are split and rotated.
// OLMo 3 adds sliding / full layers (layer_types; by default every 4th layer is full) and, like
// Gemma 3, one rope per layer type (rope_parameters keyed by layer type; theta 5e5 by default).
// Quirk (Olmo3Config.convert_rope_params_to_dict): in the 4.x layout a top-level rope_theta is
// consumed by the full-attention rope, so sliding layers keep the default theta 5e5.
#include <algorithm>

#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_olmo2_like(ConfigReader& c, const std::string& family) {
  ModelConfig cfg = parse_llama_like_dims(c, /*default_tied=*/false);
  read_silu_act(c, cfg, family);
  cfg.norm_eps = cfg_num_or(c, "rms_norm_eps", 1e-5);
  cfg.norm_placement = NormPlacement::kPost;
  cfg.qk_norm = QkNorm::kWholeBeforeRope;
  cfg.mlp_bias = false;  // Olmo2MLP has no biases, whatever mlp_bias says
  return cfg;
}

void check_full_rotary(ModelConfig& cfg, RopeConfig& r, const std::string& family) {
  r.rotary_dim = cfg.d_head;
  if (r.partial_rotary_factor != 1.0)
    throw ModelError("config.json: partial_rotary_factor is not used by " + family + "'s attention in transformers");
  if (cfg.d_head % 2 != 0) throw ModelError("config.json: head_dim must be even for RoPE");
}

ModelConfig parse_olmo2(ConfigReader& c) {
  ModelConfig cfg = parse_olmo2_like(c, "OLMo 2");
  cfg.architecture = "olmo2";
  cfg.hf_architecture = "Olmo2ForCausalLM";
  cfg.rope = read_rope(c, RopeDefaults{});
  check_full_rotary(cfg, cfg.rope, "OLMo 2");
  return cfg;
}

ModelConfig parse_olmo3(ConfigReader& c) {
  ModelConfig cfg = parse_olmo2_like(c, "OLMo 3");
  cfg.architecture = "olmo3";
  cfg.hf_architecture = "Olmo3ForCausalLM";
  RopeDefaults full, sliding;
  full.theta = sliding.theta = 500000.0;
  sliding.theta_key = "";  // see the quirk above
  cfg.rope = read_rope_for_layer_type(c, full, "full_attention");
  cfg.rope_local = read_rope_for_layer_type(c, sliding, "sliding_attention");
  check_full_rotary(cfg, cfg.rope, "OLMo 3");
  check_full_rotary(cfg, *cfg.rope_local, "OLMo 3");
  std::vector<std::string> types = read_layer_types(c, cfg.n_layer);
  if (types.empty())
    for (int64_t l = 0; l < cfg.n_layer; ++l)
      types.push_back((l + 1) % 4 != 0 ? "sliding_attention" : "full_attention");
  const int64_t window = c.json().contains("sliding_window") ? cfg_int_or(c, "sliding_window", 0) : 4096;
  if (window <= 0 && std::find(types.begin(), types.end(), "sliding_attention") != types.end())
    throw ModelError("config.json: sliding_window is null or not positive but layer_types has sliding layers "
                     "(transformers refuses to build that mask)");
  set_layer_windows(cfg, types, window, 0);
  for (auto& s : cfg.layers) s.local_rope = s.window > 0;  // sliding layers rotate with the sliding rope
  return cfg;
}

ModelWeights load_olmo2(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1.w = ck.get(b + "post_attention_layernorm.weight", {d});  // kPost: after the attention
    lw.ln2.w = ck.get(b + "post_feedforward_layernorm.weight", {d});
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, cfg.o_bias);
    lw.q_norm.w = ck.get(b + "self_attn.q_norm.weight", {dq});  // over the whole projection
    lw.k_norm.w = ck.get(b + "self_attn.k_norm.weight", {dkv});
    lw.gate = lin(b + "mlp.gate_proj", f, d, false);
    lw.up = lin(b + "mlp.up_proj", f, d, false);
    lw.down = lin(b + "mlp.down_proj", d, f, false);
    w.layers.push_back(lw);
  }
  w.ln_f.w = ck.get("model.norm.weight", {d});
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec olmo2_arch() { return {"olmo2", {"Olmo2ForCausalLM"}, parse_olmo2, load_olmo2}; }
ArchSpec olmo3_arch() { return {"olmo3", {"Olmo3ForCausalLM"}, parse_olmo3, load_olmo2}; }

}  // namespace lens
