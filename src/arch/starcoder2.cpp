// StarCoder2 (Starcoder2ForCausalLM): the LLaMA attention (GQA, rotate_half RoPE) with LayerNorms
// that have a bias (eps norm_epsilon), an ungated MLP c_proj(gelu_tanh(c_fc(x))), biases on every
// projection when use_bias (default true), a sliding_window on every layer when set, and a tied
// head by default.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_starcoder2(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/true);
  cfg.architecture = "starcoder2";
  cfg.hf_architecture = "Starcoder2ForCausalLM";
  const std::string act = cfg_str_or(c, "hidden_act", "gelu_pytorch_tanh");
  if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast") {
    cfg.mlp = MlpKind::kGeluTanh;
  } else if (act == "gelu") {
    cfg.mlp = MlpKind::kGelu;
  } else {
    throw ModelError("config.json: hidden_act '" + act + "' is not supported for StarCoder2 (gelu_pytorch_tanh, gelu)");
  }
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "norm_epsilon", 1e-5);
  cfg.qkv_bias = cfg.o_bias = cfg.mlp_bias = cfg_bool_or(c, "use_bias", true);
  cfg.sliding_window = cfg_int_or(c, "sliding_window", 0);  // null: full attention everywhere
  if (cfg.sliding_window < 0) throw ModelError("config.json: sliding_window must be positive or null");
  c.ignore({"residual_dropout", "embedding_dropout"});
  return cfg;
}

ModelWeights load_starcoder2(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  auto norm = [&](const std::string& name) {
    return NormWeights{ck.get(name + ".weight", {d}), ck.get(name + ".bias", {d})};
  };
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1 = norm(b + "input_layernorm");
    lw.ln2 = norm(b + "post_attention_layernorm");
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, cfg.o_bias);
    lw.up = lin(b + "mlp.c_fc", f, d, cfg.mlp_bias);
    lw.down = lin(b + "mlp.c_proj", d, f, cfg.mlp_bias);
    w.layers.push_back(lw);
  }
  w.ln_f = norm("model.norm");
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec starcoder2_arch() { return {"starcoder2", {"Starcoder2ForCausalLM"}, parse_starcoder2, load_starcoder2}; }

}  // namespace lens
