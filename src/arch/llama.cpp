// LLaMA (LlamaForCausalLM): RMSNorm, rotate_half RoPE (every rope type transformers implements),
// SwiGLU MLP, grouped-query attention, attention_bias / mlp_bias, tied or untied head.
// Quirk: HF checkpoints already have q/k rows permuted for rotate_half, so no permutation here.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {

ModelConfig parse_llama_like_dims(ConfigReader& c, bool default_tied) {
  ModelConfig cfg;
  cfg.n_layer = cfg_int(c, "num_hidden_layers");
  cfg.d_model = cfg_int(c, "hidden_size");
  cfg.n_head = cfg_int(c, "num_attention_heads");
  cfg.n_head_kv = cfg_int_or(c, "num_key_value_heads", cfg.n_head);
  if (cfg.n_layer <= 0 || cfg.d_model <= 0)
    throw ModelError("config.json: num_hidden_layers and hidden_size must be positive");
  if (cfg.n_head <= 0 || cfg.n_head_kv <= 0 || cfg.n_head % cfg.n_head_kv != 0)
    throw ModelError("config.json: num_attention_heads " + std::to_string(cfg.n_head) +
                     " is not a multiple of num_key_value_heads " + std::to_string(cfg.n_head_kv));
  cfg.d_head = cfg_int_or(c, "head_dim", cfg.d_model / cfg.n_head);
  cfg.d_mlp = cfg_int(c, "intermediate_size");
  cfg.vocab_size = cfg_int(c, "vocab_size");
  if (cfg.d_head <= 0 || cfg.d_mlp <= 0 || cfg.vocab_size <= 0)
    throw ModelError("config.json: head_dim, intermediate_size and vocab_size must be positive");
  cfg.n_ctx = cfg_int_or(c, "max_position_embeddings", 2048);
  cfg.norm = NormKind::kRmsNorm;
  cfg.norm_eps = cfg_num_or(c, "rms_norm_eps", 1e-6);
  cfg.mlp = MlpKind::kSwiGlu;
  cfg.pos = PosKind::kRotary;
  cfg.tied_embeddings = cfg_bool_or(c, "tie_word_embeddings", default_tied);
  cfg.qkv_bias = cfg.o_bias = cfg_bool_or(c, "attention_bias", false);
  cfg.mlp_bias = cfg_bool_or(c, "mlp_bias", false);
  cfg.bos_id = cfg_opt_int(c, "bos_token_id");
  cfg.eos_id = cfg_opt_int(c, "eos_token_id");
  llama_like_common_keys(c);
  return cfg;
}

ModelConfig parse_llama_like(ConfigReader& c, bool default_tied, const RopeDefaults& rope_defaults,
                             bool partial_rotary_ok) {
  ModelConfig cfg = parse_llama_like_dims(c, default_tied);
  cfg.rope = read_rope(c, rope_defaults);
  cfg.rope.rotary_dim = static_cast<int64_t>(static_cast<double>(cfg.d_head) * cfg.rope.partial_rotary_factor);
  // LlamaAttention multiplies whole heads by cos/sin: transformers cannot run a partial factor there.
  if (!partial_rotary_ok && cfg.rope.rotary_dim != cfg.d_head)
    throw ModelError("config.json: partial_rotary_factor " + std::to_string(cfg.rope.partial_rotary_factor) +
                     " is not used by this architecture's attention in transformers; refusing it");
  if (cfg.rope.rotary_dim < 2 || cfg.rope.rotary_dim % 2 != 0 || cfg.rope.rotary_dim > cfg.d_head)
    throw ModelError("config.json: " + std::to_string(cfg.rope.rotary_dim) + " rotary dims of a " +
                     std::to_string(cfg.d_head) + "-dim head; need an even number >= 2");
  return cfg;
}

void read_silu_act(ConfigReader& c, ModelConfig& cfg, const std::string& family, const std::string& key) {
  const std::string act = cfg_str_or(c, key, "silu");
  if (act != "silu") throw ModelError("config.json: " + key + " '" + act + "' is not supported for " + family + " (silu only)");
  cfg.mlp = MlpKind::kSwiGlu;
}

ModelWeights load_llama_like(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp;
  const int64_t dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  const bool gated = cfg.mlp == MlpKind::kSwiGlu || cfg.mlp == MlpKind::kGeGluTanh;
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1.w = ck.get(b + "input_layernorm.weight", {d});
    lw.ln2.w = ck.get(b + "post_attention_layernorm.weight", {d});
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, cfg.o_bias);
    if (gated) lw.gate = lin(b + "mlp.gate_proj", f, d, cfg.mlp_bias);
    lw.up = lin(b + "mlp.up_proj", f, d, cfg.mlp_bias);
    lw.down = lin(b + "mlp.down_proj", d, f, cfg.mlp_bias);
    if (cfg.qk_norm != QkNorm::kNone) {
      lw.q_norm.w = ck.get(b + "self_attn.q_norm.weight", {cfg.d_head});
      lw.k_norm.w = ck.get(b + "self_attn.k_norm.weight", {cfg.d_head});
    }
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

ModelConfig parse_llama(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "llama";
  cfg.hf_architecture = "LlamaForCausalLM";
  read_silu_act(c, cfg, "LLaMA");
  return cfg;
}

}  // namespace

ArchSpec llama_arch() { return {"llama", {"LlamaForCausalLM"}, parse_llama, load_llama_like}; }

}  // namespace lens
