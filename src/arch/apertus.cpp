// Apertus (ApertusForCausalLM): the LLaMA layout with norms named attention_layernorm /
// feedforward_layernorm, per-head q/k RMSNorm before the rotation, and an ungated MLP
// down(xIELU(up(x))) whose activation has learned parameters (mlp.act_fn.alpha_p / alpha_n and the
// beta / eps buffers). Without rope_parameters or rope_scaling, ApertusConfig uses llama3 scaling
// with theta 12e6, factor 8, original 8192 (a top-level rope_theta is then not read).
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_apertus(ConfigReader& c) {
  const bool default_rope = !c.has("rope_parameters") && !c.has("rope_scaling");
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false, RopeDefaults{12000000.0});
  cfg.architecture = "apertus";
  cfg.hf_architecture = "ApertusForCausalLM";
  if (default_rope) {
    RopeConfig r;
    r.type = "llama3";
    r.theta = 12000000.0;
    r.factor = 8.0;
    r.original_max_position = 8192;
    r.low_freq_factor = 1.0;
    r.high_freq_factor = 4.0;
    r.max_position = cfg.rope.max_position;
    r.rotary_dim = cfg.d_head;
    cfg.rope = r;
  }
  const std::string act = cfg_str_or(c, "hidden_act", "xielu");
  if (act != "xielu") throw ModelError("config.json: hidden_act '" + act + "' is not supported for Apertus (xielu only)");
  cfg.mlp = MlpKind::kXielu;
  cfg.qk_norm = QkNorm::kPerHeadBeforeRope;
  return cfg;
}

ModelWeights load_apertus(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  // A scalar or (1) parameter of the activation, as float32.
  auto scalar = [&](const std::string& name, double fallback) {
    if (!ck.has(name)) return at::scalar_tensor(fallback, at::kFloat);
    at::Tensor t = ck.get(name);
    if (t.numel() != 1) throw ModelError(ck.dir().string() + ": " + name + " must hold one value");
    return t.reshape({}).to(at::kFloat);
  };
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1.w = ck.get(b + "attention_layernorm.weight", {d});
    lw.ln2.w = ck.get(b + "feedforward_layernorm.weight", {d});
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, cfg.o_bias);
    lw.q_norm.w = ck.get(b + "self_attn.q_norm.weight", {cfg.d_head});
    lw.k_norm.w = ck.get(b + "self_attn.k_norm.weight", {cfg.d_head});
    lw.up = lin(b + "mlp.up_proj", f, d, false);
    lw.down = lin(b + "mlp.down_proj", d, f, false);
    const std::string a = b + "mlp.act_fn.";
    if (!ck.has(a + "alpha_p") || !ck.has(a + "alpha_n"))
      throw ModelError(ck.dir().string() + ": checkpoint has no tensor '" + a + "alpha_p' / 'alpha_n' (xIELU)");
    // beta / eps are buffers; XIELUActivation's defaults 0.5 and -1e-6 where a checkpoint omits them.
    lw.act_params = at::stack({scalar(a + "alpha_p", 0), scalar(a + "alpha_n", 0), scalar(a + "beta", 0.5),
                               scalar(a + "eps", -1e-6)});
    w.layers.push_back(lw);
  }
  w.ln_f.w = ck.get("model.norm.weight", {d});
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec apertus_arch() { return {"apertus", {"ApertusForCausalLM"}, parse_apertus, load_apertus}; }

}  // namespace lens
