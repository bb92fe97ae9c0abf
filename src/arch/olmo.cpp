// OLMo 1 (OlmoForCausalLM): the LLaMA layout with LayerNorms that have no weight or bias (eps fixed
// at 1e-5, whatever the config says) and, with clip_qkv, q / k / v each clamped to [-clip_qkv,
// clip_qkv] right after their projections. Quirk: the checkpoint has no norm tensors at all.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_olmo(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "olmo";
  cfg.hf_architecture = "OlmoForCausalLM";
  read_silu_act(c, cfg, "OLMo");
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = 1e-5;   // OlmoLayerNorm's constant; rms_norm_eps is not an OLMo key
  cfg.mlp_bias = false;  // OlmoMLP has no biases, whatever mlp_bias says
  const std::optional<double> clip = c.opt_num("clip_qkv");
  if (clip && !(*clip > 0)) throw ModelError("config.json: clip_qkv must be positive or null");
  cfg.clip_qkv = clip.value_or(0.0);
  return cfg;
}

ModelWeights load_olmo(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  ModelWeights w;  // every NormWeights stays undefined: parameter-free LayerNorms
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, cfg.o_bias);
    lw.gate = lin(b + "mlp.gate_proj", f, d, false);
    lw.up = lin(b + "mlp.up_proj", f, d, false);
    lw.down = lin(b + "mlp.down_proj", d, f, false);
    w.layers.push_back(lw);
  }
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec olmo_arch() { return {"olmo", {"OlmoForCausalLM"}, parse_olmo, load_olmo}; }

}  // namespace lens
