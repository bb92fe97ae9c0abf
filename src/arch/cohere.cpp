// Cohere (CohereForCausalLM: Command-R) and Cohere 2 (Cohere2ForCausalLM: Command-R7B, Command A):
// a parallel block on one LayerNorm without bias (x + attn(ln(x)) + mlp(ln(x))), SwiGLU, RoPE on
// interleaved pairs (2i, 2i+1), optional q/k/v/o biases (attention_bias), a tied head by default
// and logits multiplied by logit_scale (Model::unembed, so every lens layer reads through it).
// Cohere: with use_qk_norm, a LayerNorm of each head of q and k with its own gain per head
// (weights (n_head, d_head) and (n_head_kv, d_head)) before the rotation.
// Cohere 2: sliding layers (window and RoPE) and full layers (neither), from layer_types or every
// sliding_window_pattern-th (default 4) layer full. Quirk: Cohere2Config sets head_dim to
// hidden_size / num_attention_heads whatever the config says.
#include <algorithm>

#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_cohere_like(ConfigReader& c, const std::string& family) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/true);
  read_silu_act(c, cfg, family);
  cfg.norm = NormKind::kLayerNorm;  // mean-centred, gain only
  cfg.norm_eps = cfg_num_or(c, "layer_norm_eps", 1e-5);
  cfg.parallel_attn = true;
  cfg.rope.pairing = RopePairing::kInterleaved;
  cfg.mlp_bias = false;  // CohereMLP has no biases, whatever mlp_bias says
  const std::optional<double> scale = c.opt_num("logit_scale");
  if (c.json().contains("logit_scale") && !scale)
    throw ModelError("config.json: logit_scale is null (transformers would multiply the logits by None)");
  cfg.logit_scale = scale.value_or(0.0625);
  return cfg;
}

ModelConfig parse_cohere(ConfigReader& c) {
  ModelConfig cfg = parse_cohere_like(c, "Cohere");
  cfg.architecture = "cohere";
  cfg.hf_architecture = "CohereForCausalLM";
  if (cfg_bool_or(c, "use_qk_norm", false)) {
    cfg.qk_norm = QkNorm::kPerHeadBeforeRope;
    cfg.qk_norm_type = NormKind::kLayerNorm;
  }
  return cfg;
}

ModelConfig parse_cohere2(ConfigReader& c) {
  ModelConfig cfg = parse_cohere_like(c, "Cohere 2");
  cfg.architecture = "cohere2";
  cfg.hf_architecture = "Cohere2ForCausalLM";
  cfg.d_head = cfg.d_model / cfg.n_head;  // Cohere2Config overwrites head_dim
  cfg.rope.rotary_dim = cfg.d_head;
  std::vector<std::string> types = read_layer_types(c, cfg.n_layer);
  const int64_t pattern = cfg_int_or(c, "sliding_window_pattern", 4);
  if (types.empty()) {
    if (pattern <= 0) throw ModelError("config.json: sliding_window_pattern must be positive");
    for (int64_t l = 0; l < cfg.n_layer; ++l)
      types.push_back((l + 1) % pattern != 0 ? "sliding_attention" : "full_attention");
  }
  const int64_t window = c.json().contains("sliding_window") ? cfg_int_or(c, "sliding_window", 0) : 4096;
  if (window <= 0 && std::find(types.begin(), types.end(), "sliding_attention") != types.end())
    throw ModelError("config.json: sliding_window is null or not positive but layer_types has sliding layers "
                     "(transformers refuses to build that mask)");
  set_layer_windows(cfg, types, window, 0);
  for (auto& s : cfg.layers) s.rotary = s.window > 0;  // only sliding layers rotate
  return cfg;
}

ModelWeights load_cohere(const Checkpoint& ck, const ModelConfig& cfg) {
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
    lw.ln1.w = ck.get(b + "input_layernorm.weight", {d});
    lw.ln2 = lw.ln1;  // one norm feeds both sub-layers
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, cfg.o_bias);
    if (cfg.qk_norm != QkNorm::kNone) {  // one gain row per head
      lw.q_norm.w = ck.get(b + "self_attn.q_norm.weight", {cfg.n_head, cfg.d_head});
      lw.k_norm.w = ck.get(b + "self_attn.k_norm.weight", {cfg.n_head_kv, cfg.d_head});
    }
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

ArchSpec cohere_arch() { return {"cohere", {"CohereForCausalLM"}, parse_cohere, load_cohere}; }
ArchSpec cohere2_arch() { return {"cohere2", {"Cohere2ForCausalLM"}, parse_cohere2, load_cohere}; }

}  // namespace lens
