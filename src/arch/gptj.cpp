// GPT-J (GPTJForCausalLM): a parallel block on one LayerNorm (x + attn(ln_1(x)) + mlp(ln_1(x))),
// q/k/v/out projections without biases, RoPE on interleaved pairs (2i, 2i+1) of the first
// rotary_dim dims of each head with theta 10000 (a fixed sin/cos table in transformers, n_positions
// rows), an ungated gelu_new MLP fc_in / fc_out with biases, and an untied head with a bias.
// Quirk: the single ln_1 serves both sub-layers, so it is loaded into both norm slots.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_gptj(ConfigReader& c) {
  ModelConfig cfg;
  cfg.architecture = "gptj";
  cfg.hf_architecture = "GPTJForCausalLM";
  cfg.n_layer = cfg_int(c, "n_layer");
  cfg.d_model = cfg_int(c, "n_embd");
  cfg.n_head = cfg.n_head_kv = cfg_int(c, "n_head");
  if (cfg.n_layer <= 0 || cfg.n_head <= 0 || cfg.d_model % cfg.n_head != 0)
    throw ModelError("config.json: n_embd must be a positive multiple of n_head");
  cfg.d_head = cfg.d_model / cfg.n_head;
  cfg.d_mlp = cfg_int_or(c, "n_inner", 4 * cfg.d_model);  // null: 4 * n_embd
  cfg.vocab_size = cfg_int(c, "vocab_size");
  cfg.n_ctx = cfg_int_or(c, "n_positions", 2048);
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "layer_norm_epsilon", 1e-5);
  const std::string act = cfg_str_or(c, "activation_function", "gelu_new");
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    cfg.mlp = MlpKind::kGeluTanh;
  } else if (act == "gelu") {
    cfg.mlp = MlpKind::kGelu;
  } else {
    throw ModelError("config.json: activation_function '" + act + "' is not supported for GPT-J (gelu_new, gelu)");
  }
  cfg.pos = PosKind::kRotary;
  cfg.rope.theta = 10000.0;  // create_sinusoidal_positions' constant; GPT-J has no rope keys
  cfg.rope.max_position = cfg.n_ctx;
  cfg.rope.pairing = RopePairing::kInterleaved;
  if (!c.has("rotary_dim"))
    throw ModelError("config.json: rotary_dim is null (transformers' GPT-J cannot rotate whole embeddings per head)");
  cfg.rope.rotary_dim = cfg_int(c, "rotary_dim");
  if (cfg.rope.rotary_dim < 2 || cfg.rope.rotary_dim % 2 != 0 || cfg.rope.rotary_dim > cfg.d_head)
    throw ModelError("config.json: rotary_dim " + std::to_string(cfg.rope.rotary_dim) + " for a " +
                     std::to_string(cfg.d_head) + "-dim head; need an even number >= 2");
  cfg.rope.partial_rotary_factor = static_cast<double>(cfg.rope.rotary_dim) / static_cast<double>(cfg.d_head);
  cfg.parallel_attn = true;
  cfg.mlp_bias = true;
  cfg.tied_embeddings = cfg_bool_or(c, "tie_word_embeddings", false);
  cfg.bos_id = cfg_opt_int(c, "bos_token_id");
  cfg.eos_id = cfg_opt_int(c, "eos_token_id");
  return cfg;
}

ModelWeights load_gptj(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp;
  auto norm = [&](const std::string& name) {
    return NormWeights{ck.get(name + ".weight", {d}), ck.get(name + ".bias", {d})};
  };
  ModelWeights w;
  w.tok_embed = ck.get("transformer.wte.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "transformer.h." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1 = norm(b + "ln_1");
    lw.ln2 = lw.ln1;  // one norm feeds both sub-layers
    lw.q.w = ck.get(b + "attn.q_proj.weight", {d, d});
    lw.k.w = ck.get(b + "attn.k_proj.weight", {d, d});
    lw.v.w = ck.get(b + "attn.v_proj.weight", {d, d});
    lw.o.w = ck.get(b + "attn.out_proj.weight", {d, d});
    lw.up = {ck.get(b + "mlp.fc_in.weight", {f, d}), ck.get(b + "mlp.fc_in.bias", {f})};
    lw.down = {ck.get(b + "mlp.fc_out.weight", {d, f}), ck.get(b + "mlp.fc_out.bias", {d})};
    w.layers.push_back(lw);
  }
  w.ln_f = norm("transformer.ln_f");
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  w.unembed.b = ck.get("lm_head.bias", {cfg.vocab_size});  // GPTJForCausalLM's head always has a bias
  return w;
}

}  // namespace

ArchSpec gptj_arch() { return {"gptj", {"GPTJForCausalLM"}, parse_gptj, load_gptj}; }

}  // namespace lens
