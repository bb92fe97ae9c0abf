// StableLM (StableLmForCausalLM: StableLM 2, StableLM-3B-4E1T, StableCode): the LLaMA attention and
// SwiGLU MLP with LayerNorms that have a bias, partial rotary (partial_rotary_factor, default 0.25,
// rotate_half), q/k/v biases with use_qkv_bias, a parallel block on input_layernorm alone when
// use_parallel_residual, and with qk_layernorm a LayerNorm (gain, no bias) of each q / k head with
// its own weights per head. Quirk: those per-head norms are stored as one module per head
// (q_layernorm.norms.{h}.weight), stacked at load into one (heads, d_head) gain (a copy).
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_stablelm(ConfigReader& c) {
  RopeDefaults rd;
  rd.partial = 0.25;  // StableLmConfig: kwargs.setdefault("partial_rotary_factor", 0.25)
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false, rd, /*partial_rotary_ok=*/true);
  cfg.architecture = "stablelm";
  cfg.hf_architecture = "StableLmForCausalLM";
  read_silu_act(c, cfg, "StableLM");
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "layer_norm_eps", 1e-5);
  cfg.qkv_bias = cfg_bool_or(c, "use_qkv_bias", false);
  cfg.o_bias = cfg.mlp_bias = false;  // StableLmAttention / StableLmMLP: no o_proj or MLP biases
  cfg.parallel_attn = cfg_bool_or(c, "use_parallel_residual", false);
  if (cfg_bool_or(c, "qk_layernorm", false)) {
    cfg.qk_norm = QkNorm::kPerHeadBeforeRope;
    cfg.qk_norm_type = NormKind::kLayerNorm;
  }
  return cfg;
}

ModelWeights load_stablelm(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, dq = cfg.n_head * cfg.d_head, dkv = cfg.n_head_kv * cfg.d_head;
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  auto norm = [&](const std::string& name) {
    return NormWeights{ck.get(name + ".weight", {d}), ck.get(name + ".bias", {d})};
  };
  auto per_head = [&](const std::string& name, int64_t heads) {  // (heads, d_head) from one module per head
    std::vector<at::Tensor> rows;
    for (int64_t h = 0; h < heads; ++h)
      rows.push_back(ck.get(name + ".norms." + std::to_string(h) + ".weight", {cfg.d_head}));
    return NormWeights{at::stack(rows), {}};
  };
  ModelWeights w;
  w.tok_embed = ck.get("model.embed_tokens.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1 = norm(b + "input_layernorm");
    // A parallel block has no post_attention_layernorm: the input norm feeds both sub-layers.
    lw.ln2 = cfg.parallel_attn ? lw.ln1 : norm(b + "post_attention_layernorm");
    lw.q = lin(b + "self_attn.q_proj", dq, d, cfg.qkv_bias);
    lw.k = lin(b + "self_attn.k_proj", dkv, d, cfg.qkv_bias);
    lw.v = lin(b + "self_attn.v_proj", dkv, d, cfg.qkv_bias);
    lw.o = lin(b + "self_attn.o_proj", d, dq, false);
    if (cfg.qk_norm != QkNorm::kNone) {
      lw.q_norm = per_head(b + "self_attn.q_layernorm", cfg.n_head);
      lw.k_norm = per_head(b + "self_attn.k_layernorm", cfg.n_head_kv);
    }
    lw.gate = lin(b + "mlp.gate_proj", f, d, false);
    lw.up = lin(b + "mlp.up_proj", f, d, false);
    lw.down = lin(b + "mlp.down_proj", d, f, false);
    w.layers.push_back(lw);
  }
  w.ln_f = norm("model.norm");
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec stablelm_arch() { return {"stablelm", {"StableLmForCausalLM"}, parse_stablelm, load_stablelm}; }

}  // namespace lens
