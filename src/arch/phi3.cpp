// Phi-3 (Phi3ForCausalLM): the LLaMA layout with q, k and v fused in one qkv_proj (rows q | k | v)
// and gate and up fused in one gate_up_proj (rows gate | up), both split at load as row views (no
// copy); RoPE default or longrope (short / long factors by sequence length, original context from
// the top-level original_max_position_embeddings), partial rotary allowed (Phi-4-mini: 0.75), and
// a sliding_window on every layer when set. Old configs call longrope "su" or "yarn", which
// Phi3Config renames only after validating the dict as that type (so "su" with a top-level
// original_max_position_embeddings does not load in transformers 5.23); lens refuses both names.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_phi3(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false, RopeDefaults{}, /*partial_rotary_ok=*/true);
  cfg.architecture = "phi3";
  cfg.hf_architecture = "Phi3ForCausalLM";
  read_silu_act(c, cfg, "Phi-3");
  cfg.norm_eps = cfg_num_or(c, "rms_norm_eps", 1e-5);
  if (cfg.rope.type != "default" && cfg.rope.type != "longrope")
    throw ModelError("config.json: rope_type '" + cfg.rope.type + "' is not read as such by Phi3Config (lens reads "
                     "default or longrope; old configs' \"yarn\" means longrope there)");
  // Phi3Attention builds its projections without biases, whatever attention_bias / mlp_bias say.
  cfg.qkv_bias = cfg.o_bias = cfg.mlp_bias = false;
  // Phi3Config always saves original_max_position_embeddings; only longrope reads it (read_rope did).
  c.ignore({"original_max_position_embeddings"});
  cfg.sliding_window = cfg_int_or(c, "sliding_window", 0);  // null: full attention everywhere
  if (cfg.sliding_window < 0) throw ModelError("config.json: sliding_window must be positive or null");
  return cfg;
}

ModelWeights load_phi3(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1.w = ck.get(b + "input_layernorm.weight", {d});
    lw.ln2.w = ck.get(b + "post_attention_layernorm.weight", {d});
    lw.qkv.w = ck.get(b + "self_attn.qkv_proj.weight", {dq + 2 * dkv, d});  // q | k | v: one product
    lw.o.w = ck.get(b + "self_attn.o_proj.weight", {d, dq});
    // gate_up_proj (2f, d): Phi3MLP does gate, up = chunk(2), so the first f rows are the gate.
    const at::Tensor gu = ck.get(b + "mlp.gate_up_proj.weight", {2 * f, d});
    lw.gate.w = gu.narrow(0, 0, f);
    lw.up.w = gu.narrow(0, f, f);
    lw.down.w = ck.get(b + "mlp.down_proj.weight", {d, f});
    w.layers.push_back(lw);
  }
  w.ln_f.w = ck.get("model.norm.weight", {d});
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec phi3_arch() { return {"phi3", {"Phi3ForCausalLM"}, parse_phi3, load_phi3}; }

}  // namespace lens
