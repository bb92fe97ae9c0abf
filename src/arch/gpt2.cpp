// GPT-2 (GPT2LMHeadModel): learned positions, LayerNorm, gelu_new MLP, tied head.
// Quirks handled here: Conv1D weights are stored (in, out), so they are used as transposed
// views (no copy); c_attn holds q, k and v side by side and is split by views; the
// attn.bias / attn.masked_bias buffers of old checkpoints are ignored; names may or may not
// carry the "transformer." prefix.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_gpt2(ConfigReader& c) {
  ModelConfig cfg;
  cfg.architecture = "gpt2";
  cfg.hf_architecture = "GPT2LMHeadModel";
  cfg.n_layer = cfg_int(c, "n_layer");
  cfg.d_model = cfg_int(c, "n_embd");
  cfg.n_head = cfg_int(c, "n_head");
  cfg.n_head_kv = cfg.n_head;
  if (cfg.n_head <= 0 || cfg.d_model % cfg.n_head != 0)
    throw ModelError("config.json: n_embd " + std::to_string(cfg.d_model) + " is not divisible by n_head " +
                     std::to_string(cfg.n_head));
  cfg.d_head = cfg.d_model / cfg.n_head;
  cfg.d_mlp = cfg_int_or(c, "n_inner", 4 * cfg.d_model);
  cfg.vocab_size = cfg_int(c, "vocab_size");
  cfg.n_ctx = cfg_int_or(c, "n_positions", cfg_int_or(c, "n_ctx", 1024));
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "layer_norm_epsilon", 1e-5);
  const std::string act = cfg_str_or(c, "activation_function", "gelu_new");
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    cfg.mlp = MlpKind::kGeluTanh;
  } else if (act == "gelu") {
    cfg.mlp = MlpKind::kGelu;
  } else {
    throw ModelError("config.json: activation_function '" + act + "' is not supported for GPT-2");
  }
  if (cfg_bool_or(c, "scale_attn_by_inverse_layer_idx", false) || cfg_bool_or(c, "reorder_and_upcast_attn", false))
    throw ModelError("config.json: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported");
  if (!cfg_bool_or(c, "scale_attn_weights", true)) cfg.attn_scale = 1.0;
  cfg.pos = PosKind::kLearned;
  cfg.tied_embeddings = cfg_bool_or(c, "tie_word_embeddings", true);
  // GPT2DoubleHeadsModel's summary head and the cross-attention switch do not touch the LM path.
  c.ignore({"summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels"});
  cfg.bos_id = cfg_opt_int(c, "bos_token_id");
  cfg.eos_id = cfg_opt_int(c, "eos_token_id");
  return cfg;
}

ModelWeights load_gpt2(const Checkpoint& ck, const ModelConfig& cfg) {
  const std::string p = ck.has("transformer.wte.weight") ? "transformer." : "";
  const int64_t d = cfg.d_model, f = cfg.d_mlp;
  // Conv1D stores (in, out); .t() gives the (out, in) view a linear layer expects.
  auto conv = [&](const std::string& name, int64_t in, int64_t out) {
    return LinearWeights{ck.get(name + ".weight", {in, out}).t(), ck.get(name + ".bias", {out})};
  };
  auto norm = [&](const std::string& name) {
    return NormWeights{ck.get(name + ".weight", {d}), ck.get(name + ".bias", {d})};
  };
  ModelWeights w;
  w.tok_embed = ck.get(p + "wte.weight", {cfg.vocab_size, d});
  w.pos_embed = ck.get(p + "wpe.weight", {cfg.n_ctx, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = p + "h." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1 = norm(b + "ln_1");
    lw.ln2 = norm(b + "ln_2");
    lw.qkv = conv(b + "attn.c_attn", d, 3 * d);  // rows: q | k | v
    lw.o = conv(b + "attn.c_proj", d, d);
    lw.up = conv(b + "mlp.c_fc", d, f);
    lw.down = conv(b + "mlp.c_proj", f, d);
    w.layers.push_back(lw);
  }
  w.ln_f = norm(p + "ln_f");
  // The head is tied to wte unless the checkpoint really carries its own lm_head.
  w.unembed.w = (!cfg.tied_embeddings && ck.has("lm_head.weight")) ? ck.get("lm_head.weight", {cfg.vocab_size, d})
                                                                  : w.tok_embed;
  return w;
}

}  // namespace

ArchSpec gpt2_arch() { return {"gpt2", {"GPT2LMHeadModel", "GPT2Model"}, parse_gpt2, load_gpt2}; }

}  // namespace lens
