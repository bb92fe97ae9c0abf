// LLaMA (LlamaForCausalLM): RMSNorm, rotate_half RoPE with rope_theta (and llama3 / linear
// rope_scaling), SwiGLU MLP, grouped-query attention, tied or untied head.
// Quirk: HF checkpoints already have q/k rows permuted for rotate_half, so no permutation here.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {

ModelConfig parse_llama_like(const nlohmann::json& c, bool default_tied) {
  ModelConfig cfg;
  cfg.n_layer = cfg_int(c, "num_hidden_layers");
  cfg.d_model = cfg_int(c, "hidden_size");
  cfg.n_head = cfg_int(c, "num_attention_heads");
  cfg.n_head_kv = cfg_int_or(c, "num_key_value_heads", cfg.n_head);
  if (cfg.n_head <= 0 || cfg.n_head_kv <= 0 || cfg.n_head % cfg.n_head_kv != 0)
    throw ModelError("config.json: num_attention_heads " + std::to_string(cfg.n_head) +
                     " is not a multiple of num_key_value_heads " + std::to_string(cfg.n_head_kv));
  cfg.d_head = cfg_int_or(c, "head_dim", cfg.d_model / cfg.n_head);
  cfg.d_mlp = cfg_int(c, "intermediate_size");
  cfg.vocab_size = cfg_int(c, "vocab_size");
  cfg.n_ctx = cfg_int_or(c, "max_position_embeddings", 2048);
  cfg.norm = NormKind::kRmsNorm;
  cfg.norm_eps = cfg_num_or(c, "rms_norm_eps", 1e-6);
  cfg.mlp = MlpKind::kSwiGlu;
  cfg.pos = PosKind::kRotary;
  cfg.rope.theta = cfg_num_or(c, "rope_theta", 10000.0);
  cfg.rope.rotary_dim = cfg.d_head;
  cfg.tied_embeddings = cfg_bool_or(c, "tie_word_embeddings", default_tied);
  cfg.bos_id = cfg_opt_int(c, "bos_token_id");
  cfg.eos_id = cfg_opt_int(c, "eos_token_id");
  return cfg;
}

ModelWeights load_llama_like(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp;
  const int64_t dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (ck.has(name + ".bias")) lw.b = ck.get(name + ".bias", {out});  // attention_bias / mlp_bias
    return lw;
  };
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1.w = ck.get(b + "input_layernorm.weight", {d});
    lw.ln2.w = ck.get(b + "post_attention_layernorm.weight", {d});
    lw.q = lin(b + "self_attn.q_proj", dq, d);
    lw.k = lin(b + "self_attn.k_proj", dkv, d);
    lw.v = lin(b + "self_attn.v_proj", dkv, d);
    lw.o = lin(b + "self_attn.o_proj", d, dq);
    lw.gate = lin(b + "mlp.gate_proj", f, d);
    lw.up = lin(b + "mlp.up_proj", f, d);
    lw.down = lin(b + "mlp.down_proj", d, f);
    w.layers.push_back(lw);
  }
  w.ln_f.w = ck.get("model.norm.weight", {d});
  if (cfg.tied_embeddings || !ck.has("lm_head.weight")) {
    if (!cfg.tied_embeddings)
      throw ModelError(ck.dir().string() + ": tie_word_embeddings is false but the checkpoint has no lm_head.weight");
    w.unembed.w = w.tok_embed;
  } else {
    w.unembed.w = ck.get("lm_head.weight", {cfg.vocab_size, d});
  }
  return w;
}

namespace {

ModelConfig parse_llama(const nlohmann::json& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "llama";
  cfg.hf_architecture = "LlamaForCausalLM";
  const std::string act = cfg_str_or(c, "hidden_act", "silu");
  if (act != "silu") throw ModelError("config.json: hidden_act '" + act + "' is not supported for LLaMA (silu only)");
  parse_rope_scaling(c, cfg);
  return cfg;
}

}  // namespace

ArchSpec llama_arch() { return {"llama", {"LlamaForCausalLM"}, parse_llama, load_llama_like}; }

}  // namespace lens
