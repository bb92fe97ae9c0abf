// GPT-NeoX (GPTNeoXForCausalLM: Pythia, GPT-NeoX-20B): LayerNorm with bias, partial rotary
// (rotary_pct of each head rotates, rotate_half layout, base rotary_emb_base), exact or tanh gelu
// MLP with biases, parallel attention + MLP when use_parallel_residual, untied embed_out head.
// Quirks handled here: query_key_value is one fused matrix whose rows are laid out per head as
// [q_h | k_h | v_h] (not q | k | v as in GPT-2), so it is split into q, k and v at load time by a
// copy (a strided gather that no single view can express); the attention.bias / masked_bias /
// rotary_emb.inv_freq buffers of old checkpoints are ignored; names carry the "gpt_neox." prefix.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_gpt_neox(ConfigReader& c) {
  ModelConfig cfg;
  cfg.architecture = "gpt_neox";
  cfg.hf_architecture = "GPTNeoXForCausalLM";
  cfg.n_layer = cfg_int(c, "num_hidden_layers");
  cfg.d_model = cfg_int(c, "hidden_size");
  cfg.n_head = cfg_int(c, "num_attention_heads");
  cfg.n_head_kv = cfg.n_head;
  if (cfg.n_head <= 0 || cfg.d_model % cfg.n_head != 0)
    throw ModelError("config.json: hidden_size " + std::to_string(cfg.d_model) +
                     " is not divisible by num_attention_heads " + std::to_string(cfg.n_head));
  cfg.d_head = cfg.d_model / cfg.n_head;
  cfg.d_mlp = cfg_int(c, "intermediate_size");
  cfg.vocab_size = cfg_int(c, "vocab_size");
  cfg.n_ctx = cfg_int_or(c, "max_position_embeddings", 2048);
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "layer_norm_eps", 1e-5);
  const std::string act = cfg_str_or(c, "hidden_act", "gelu");
  if (act == "gelu") {
    cfg.mlp = MlpKind::kGelu;
  } else if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    cfg.mlp = MlpKind::kGeluTanh;
  } else {
    throw ModelError("config.json: hidden_act '" + act + "' is not supported for GPT-NeoX (gelu, gelu_new)");
  }
  cfg.pos = PosKind::kRotary;
  // transformers 5 (GPTNeoXConfig.convert_rope_params_to_dict): theta and the rotary fraction come
  // from rope_parameters, else from the 4.x keys rotary_emb_base and rotary_pct (default 0.25); a
  // top-level rope_theta or partial_rotary_factor is not read. rotary_ndims = int(head_size * pct).
  RopeDefaults rd;
  rd.theta_key = "rotary_emb_base";
  rd.partial_key = "rotary_pct";
  rd.partial = 0.25;
  cfg.rope = read_rope(c, rd);
  const double pct = cfg.rope.partial_rotary_factor;
  cfg.rope.rotary_dim = static_cast<int64_t>(static_cast<double>(cfg.d_head) * pct);
  if (cfg.rope.rotary_dim < 2 || cfg.rope.rotary_dim % 2 != 0)
    throw ModelError("config.json: rotary fraction " + std::to_string(pct) + " gives " +
                     std::to_string(cfg.rope.rotary_dim) + " rotary dims of a " + std::to_string(cfg.d_head) +
                     "-dim head; need an even number >= 2");
  cfg.qkv_bias = cfg.o_bias = cfg_bool_or(c, "attention_bias", true);
  cfg.parallel_attn = cfg_bool_or(c, "use_parallel_residual", true);
  cfg.tied_embeddings = cfg_bool_or(c, "tie_word_embeddings", false);
  c.ignore({"classifier_dropout"});
  cfg.bos_id = cfg_opt_int(c, "bos_token_id");
  cfg.eos_id = cfg_opt_int(c, "eos_token_id");
  return cfg;
}

ModelWeights load_gpt_neox(const Checkpoint& ck, const ModelConfig& cfg) {
  const std::string p = "gpt_neox.";
  const int64_t d = cfg.d_model, f = cfg.d_mlp, H = cfg.n_head, dh = cfg.d_head;
  // attention_bias (default true) decides whether query_key_value and dense carry biases, as the
  // modules transformers builds from the config do; the MLP always has them.
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  auto norm = [&](const std::string& name) {
    return NormWeights{ck.get(name + ".weight", {d}), ck.get(name + ".bias", {d})};
  };
  ModelWeights w;
  w.tok_embed = ck.get(p + "embed_in.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = p + "layers." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1 = norm(b + "input_layernorm");
    lw.ln2 = norm(b + "post_attention_layernorm");
    // Fused rows, per head h: [q_h (dh rows) | k_h | v_h]. View as (H, 3, dh, d) and gather part i of
    // every head into a contiguous (H*dh, d) matrix.
    LinearWeights qkv = lin(b + "attention.query_key_value", 3 * d, d, cfg.qkv_bias);
    auto part = [&](int64_t i) {
      LinearWeights out;
      out.w = qkv.w.view({H, 3, dh, d}).select(1, i).reshape({H * dh, d}).contiguous();
      if (qkv.b.defined()) out.b = qkv.b.view({H, 3, dh}).select(1, i).reshape({H * dh}).contiguous();
      return out;
    };
    lw.q = part(0);
    lw.k = part(1);
    lw.v = part(2);
    lw.o = lin(b + "attention.dense", d, d, cfg.o_bias);
    lw.up = lin(b + "mlp.dense_h_to_4h", f, d, true);
    lw.down = lin(b + "mlp.dense_4h_to_h", d, f, true);
    w.layers.push_back(lw);
  }
  w.ln_f = norm(p + "final_layer_norm");
  if (cfg.tied_embeddings) {
    w.unembed.w = w.tok_embed;
  } else {
    if (!ck.has("embed_out.weight"))
      throw ModelError(ck.dir().string() + ": tie_word_embeddings is false but the checkpoint has no embed_out.weight");
    w.unembed.w = ck.get("embed_out.weight", {cfg.vocab_size, d});
  }
  return w;
}

}  // namespace

ArchSpec gpt_neox_arch() { return {"gpt_neox", {"GPTNeoXForCausalLM"}, parse_gpt_neox, load_gpt_neox}; }

}  // namespace lens
