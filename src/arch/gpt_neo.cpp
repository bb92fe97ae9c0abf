// GPT-Neo (GPTNeoForCausalLM): GPT-2's pre-LayerNorm block with learned positions, separate
// q/k/v projections without biases (out_proj has one), attention scores NOT scaled by
// 1/sqrt(d_head), an ungated gelu_new MLP c_fc / c_proj with biases and a tied head. Layers are
// "global" (causal) or "local" (each query sees its last window_size keys) from attention_types,
// a list of [[types...], repeat] pairs expanded in order.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_gpt_neo(ConfigReader& c) {
  ModelConfig cfg;
  cfg.architecture = "gpt_neo";
  cfg.hf_architecture = "GPTNeoForCausalLM";
  cfg.n_layer = cfg_int(c, "num_layers");
  cfg.d_model = cfg_int(c, "hidden_size");
  cfg.n_head = cfg.n_head_kv = cfg_int(c, "num_heads");
  if (cfg.n_layer <= 0 || cfg.n_head <= 0 || cfg.d_model % cfg.n_head != 0)
    throw ModelError("config.json: hidden_size must be a positive multiple of num_heads");
  cfg.d_head = cfg.d_model / cfg.n_head;
  cfg.d_mlp = cfg_int_or(c, "intermediate_size", 4 * cfg.d_model);  // null: 4 * hidden_size
  cfg.vocab_size = cfg_int(c, "vocab_size");
  cfg.n_ctx = cfg_int_or(c, "max_position_embeddings", 2048);
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "layer_norm_epsilon", 1e-5);
  const std::string act = cfg_str_or(c, "activation_function", "gelu_new");
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    cfg.mlp = MlpKind::kGeluTanh;
  } else if (act == "gelu") {
    cfg.mlp = MlpKind::kGelu;
  } else {
    throw ModelError("config.json: activation_function '" + act + "' is not supported for GPT-Neo (gelu_new, gelu)");
  }
  cfg.pos = PosKind::kLearned;
  cfg.attn_scale = 1.0;  // GPTNeoSelfAttention: softmax(q k^T), no 1/sqrt(d_head)
  cfg.o_bias = cfg.mlp_bias = true;
  cfg.tied_embeddings = cfg_bool_or(c, "tie_word_embeddings", true);
  const int64_t window = cfg_int_or(c, "window_size", 256);
  // attention_types: [[["global", "local"], 12]] by default -> global, local, global, ...
  nlohmann::json types = c.raw("attention_types");
  if (types.is_null())
    types = nlohmann::json::parse(R"([[["global", "local"], )" + std::to_string(cfg.n_layer / 2) + "]]");
  std::vector<std::string> layers;
  const std::string bad =
      "config.json: attention_types must be a list of [[types...], count] pairs, got " + types.dump();
  if (!types.is_array()) throw ModelError(bad);
  for (const auto& item : types) {
    if (!item.is_array() || item.size() != 2 || !item[0].is_array() || !item[1].is_number_integer())
      throw ModelError(bad);
    for (int64_t i = 0; i < item[1].get<int64_t>(); ++i)
      for (const auto& t : item[0]) {
        if (!t.is_string()) throw ModelError(bad);
        layers.push_back(t.get<std::string>());
      }
  }
  if (static_cast<int64_t>(layers.size()) != cfg.n_layer)
    throw ModelError("config.json: attention_types gives " + std::to_string(layers.size()) + " layers for num_layers " +
                     std::to_string(cfg.n_layer));
  for (const auto& t : layers) {
    LayerSpec s;
    s.rotary = false;
    if (t == "local") {
      if (window <= 0) throw ModelError("config.json: window_size must be positive for local layers");
      s.window = window;
    } else if (t != "global") {
      throw ModelError("config.json: attention type '" + t + "' is not implemented for GPT-Neo (global, local)");
    }
    cfg.layers.push_back(s);
  }
  // attention_layers is saved by GPTNeoConfig but recomputed from attention_types on load.
  c.ignore({"resid_dropout", "embed_dropout", "attention_layers"});
  cfg.bos_id = cfg_opt_int(c, "bos_token_id");
  cfg.eos_id = cfg_opt_int(c, "eos_token_id");
  return cfg;
}

ModelWeights load_gpt_neo(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp;
  auto norm = [&](const std::string& name) {
    return NormWeights{ck.get(name + ".weight", {d}), ck.get(name + ".bias", {d})};
  };
  ModelWeights w;
  w.tok_embed = ck.get("transformer.wte.weight", {cfg.vocab_size, d});
  w.pos_embed = ck.get("transformer.wpe.weight", {cfg.n_ctx, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "transformer.h." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.ln1 = norm(b + "ln_1");
    lw.ln2 = norm(b + "ln_2");
    lw.q.w = ck.get(b + "attn.attention.q_proj.weight", {d, d});
    lw.k.w = ck.get(b + "attn.attention.k_proj.weight", {d, d});
    lw.v.w = ck.get(b + "attn.attention.v_proj.weight", {d, d});
    lw.o = {ck.get(b + "attn.attention.out_proj.weight", {d, d}), ck.get(b + "attn.attention.out_proj.bias", {d})};
    lw.up = {ck.get(b + "mlp.c_fc.weight", {f, d}), ck.get(b + "mlp.c_fc.bias", {f})};
    lw.down = {ck.get(b + "mlp.c_proj.weight", {d, f}), ck.get(b + "mlp.c_proj.bias", {d})};
    w.layers.push_back(lw);
  }
  w.ln_f = norm("transformer.ln_f");
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec gpt_neo_arch() { return {"gpt_neo", {"GPTNeoForCausalLM"}, parse_gpt_neo, load_gpt_neo}; }

}  // namespace lens
