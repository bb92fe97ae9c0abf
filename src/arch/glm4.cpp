// GLM-4 (Glm4ForCausalLM): sandwich norms (input_layernorm -> attention -> post_self_attn_layernorm,
// post_attention_layernorm -> MLP -> post_mlp_layernorm), one fused gate_up_proj (rows: gate | up),
// q/k/v biases with attention_bias (never on o_proj), and partial interleaved rotary: the first
// partial_rotary_factor (default 0.5) of each head rotates in pairs (2i, 2i+1).
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_glm4(ConfigReader& c) {
  RopeDefaults rd;
  rd.partial = 0.5;  // Glm4Config: kwargs.setdefault("partial_rotary_factor", 0.5)
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false, rd, /*partial_rotary_ok=*/true);
  cfg.architecture = "glm4";
  cfg.hf_architecture = "Glm4ForCausalLM";
  read_silu_act(c, cfg, "GLM-4");
  cfg.d_head = cfg_int_or(c, "head_dim", 128);
  cfg.rope.rotary_dim = static_cast<int64_t>(static_cast<double>(cfg.d_head) * cfg.rope.partial_rotary_factor);
  if (cfg.rope.rotary_dim < 2 || cfg.rope.rotary_dim % 2 != 0)
    throw ModelError("config.json: partial_rotary_factor gives " + std::to_string(cfg.rope.rotary_dim) +
                     " rotary dims; need an even number >= 2");
  cfg.rope.pairing = RopePairing::kInterleaved;
  cfg.norm_eps = cfg_num_or(c, "rms_norm_eps", 0.00000015625);
  cfg.norm_placement = NormPlacement::kSandwich;
  cfg.qkv_bias = cfg_bool_or(c, "attention_bias", true);
  cfg.o_bias = false;
  return cfg;
}

ModelWeights load_glm4(const Checkpoint& ck, const ModelConfig& cfg) {
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
    lw.ln1_post.w = ck.get(b + "post_self_attn_layernorm.weight", {d});
    lw.ln2.w = ck.get(b + "post_attention_layernorm.weight", {d});
    lw.ln2_post.w = ck.get(b + "post_mlp_layernorm.weight", {d});
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, false);
    // gate_up_proj (2f, d): the first f rows are the gate (Glm4MLP: gate, up = chunk(2)); row views, no copy.
    const at::Tensor gu = ck.get(b + "mlp.gate_up_proj.weight", {2 * f, d});
    lw.gate.w = gu.narrow(0, 0, f);
    lw.up.w = gu.narrow(0, f, f);
    lw.down = lin(b + "mlp.down_proj", d, f, false);
    w.layers.push_back(lw);
  }
  w.ln_f.w = ck.get("model.norm.weight", {d});
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec glm4_arch() { return {"glm4", {"Glm4ForCausalLM"}, parse_glm4, load_glm4}; }

}  // namespace lens
