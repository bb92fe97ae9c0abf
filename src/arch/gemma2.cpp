// Gemma 2 (Gemma2ForCausalLM): Gemma 1's (1 + w) RMSNorm, tanh GeGLU, sqrt(d_model) embeddings (in
// the model dtype) and tied head, plus sandwich norms (input_layernorm -> attention ->
// post_attention_layernorm -> add; pre_feedforward_layernorm -> MLP -> post_feedforward_layernorm
// -> add), softmax scale query_pre_attn_scalar^-0.5, attention scores soft-capped by
// tanh(s / cap) * cap before the mask (attn_logit_softcapping, default 50), logits soft-capped the
// same way (final_logit_softcapping, default 30; in Model::unembed, so every lens layer reads
// through it) and alternating sliding / full layers (layer_types; by default layer 0 slides).
// Quirks: the activation is `hidden_activation` (Gemma 2 never read `hidden_act`, which its
// release configs also carry); an explicit null soft-cap means none, an absent one the default.
// Gemma 3 text shares this parser and loader (src/arch/gemma3.cpp).
#include <algorithm>
#include <cmath>

#include "arch/arch.h"
#include "lens/error.h"

namespace lens {

namespace {

// A soft-cap key: absent -> the family's default, null -> none (0), else a positive number.
double read_cap(ConfigReader& c, const std::string& key, double fallback) {
  if (!c.json().contains(key)) {
    c.raw(key);
    return fallback;
  }
  const std::optional<double> v = c.opt_num(key);
  if (!v) return 0.0;
  if (!(*v > 0)) throw ModelError("config.json: " + key + " must be positive or null, got " + std::to_string(*v));
  return *v;
}

}  // namespace

ModelConfig parse_gemma2_like(ConfigReader& c, const std::string& family, double default_attn_cap,
                              double default_final_cap, int64_t pattern) {
  ModelConfig cfg = parse_llama_like_dims(c, /*default_tied=*/true);
  cfg.d_head = cfg_int_or(c, "head_dim", 256);  // the config classes' default, not d_model / n_head
  if (cfg.d_head <= 0) throw ModelError("config.json: head_dim must be positive");
  const std::string act = cfg_str_or(c, "hidden_activation", "gelu_pytorch_tanh");
  if (act != "gelu_pytorch_tanh" && act != "gelu_new" && act != "gelu_fast")
    throw ModelError("config.json: hidden_activation '" + act + "' is not supported for " + family +
                     " (gelu_pytorch_tanh only)");
  c.ignore({"hidden_act",             // not read by Gemma 2 / 3 modeling code in 4.x or 5.x
            "cache_implementation",   // a generation setting ("hybrid")
            "sliding_window_size"});  // a leftover of early Gemma 2 configs; only sliding_window is read
  if (cfg_bool_or(c, "use_bidirectional_attention", false))
    throw ModelError("config.json: use_bidirectional_attention is true; lens implements causal attention only");
  cfg.mlp = MlpKind::kGeGluTanh;
  cfg.mlp_bias = false;  // Gemma's MLP never has biases, whatever mlp_bias says
  cfg.norm_plus_one = true;
  cfg.norm_placement = NormPlacement::kSandwich;
  cfg.embed_scale = std::sqrt(static_cast<double>(cfg.d_model));
  const double qpas = cfg_num_or(c, "query_pre_attn_scalar", 256);
  if (!(qpas > 0)) throw ModelError("config.json: query_pre_attn_scalar must be positive");
  cfg.attn_scale = std::pow(qpas, -0.5);
  cfg.attn_softcap = read_cap(c, "attn_logit_softcapping", default_attn_cap);
  cfg.final_softcap = read_cap(c, "final_logit_softcapping", default_final_cap);

  std::vector<std::string> types = read_layer_types(c, cfg.n_layer);
  if (types.empty())  // the config classes' default: every pattern-th layer is full attention
    for (int64_t l = 0; l < cfg.n_layer; ++l)
      types.push_back((l + 1) % pattern != 0 ? "sliding_attention" : "full_attention");
  const int64_t window = c.json().contains("sliding_window") ? cfg_int_or(c, "sliding_window", 0) : 4096;
  const bool any_sliding = std::find(types.begin(), types.end(), "sliding_attention") != types.end();
  if (any_sliding && window <= 0)
    throw ModelError("config.json: sliding_window is null or not positive but layer_types has sliding layers "
                     "(transformers refuses to build that mask)");
  set_layer_windows(cfg, types, window, 0);
  return cfg;
}

ModelWeights load_gemma2_like(const Checkpoint& ck, const ModelConfig& cfg) {
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
    lw.ln1_post.w = ck.get(b + "post_attention_layernorm.weight", {d});  // after the attention, despite the name
    lw.ln2.w = ck.get(b + "pre_feedforward_layernorm.weight", {d});
    lw.ln2_post.w = ck.get(b + "post_feedforward_layernorm.weight", {d});
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, cfg.o_bias);
    if (cfg.qk_norm != QkNorm::kNone) {
      lw.q_norm.w = ck.get(b + "self_attn.q_norm.weight", {cfg.d_head});
      lw.k_norm.w = ck.get(b + "self_attn.k_norm.weight", {cfg.d_head});
    }
    lw.gate = lin(b + "mlp.gate_proj", f, d, false);
    lw.up = lin(b + "mlp.up_proj", f, d, false);
    lw.down = lin(b + "mlp.down_proj", d, f, false);
    w.layers.push_back(lw);
  }
  w.ln_f.w = ck.get("model.norm.weight", {d});
  if (cfg.tied_embeddings) {
    w.unembed.w = w.tok_embed;
  } else {
    if (!ck.has("lm_head.weight"))
      throw ModelError(ck.dir().string() + ": tie_word_embeddings is false but the checkpoint has no lm_head.weight");
    w.unembed.w = ck.get("lm_head.weight", {cfg.vocab_size, d});
  }
  return w;
}

namespace {

ModelConfig parse_gemma2(ConfigReader& c) {
  ModelConfig cfg = parse_gemma2_like(c, "Gemma 2", /*default_attn_cap=*/50.0, /*default_final_cap=*/30.0,
                                      /*pattern=*/2);
  cfg.architecture = "gemma2";
  cfg.hf_architecture = "Gemma2ForCausalLM";
  cfg.rope = read_rope(c, RopeDefaults{});
  cfg.rope.rotary_dim = cfg.d_head;
  if (cfg.rope.partial_rotary_factor != 1.0)
    throw ModelError("config.json: partial_rotary_factor " + std::to_string(cfg.rope.partial_rotary_factor) +
                     " is not used by Gemma 2's attention in transformers; refusing it");
  if (cfg.d_head % 2 != 0) throw ModelError("config.json: head_dim must be even for RoPE");
  return cfg;
}

}  // namespace

ArchSpec gemma2_arch() { return {"gemma2", {"Gemma2ForCausalLM"}, parse_gemma2, load_gemma2_like}; }

}  // namespace lens
