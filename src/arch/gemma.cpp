// Gemma (GemmaForCausalLM, Gemma 1): the LLaMA layout with embeddings scaled by sqrt(d_model),
// RMSNorm that scales by (1 + w), a GeGLU MLP with tanh gelu, head_dim independent of
// d_model / n_head (e.g. 256 for gemma-7b) and a head tied to the (unscaled) embeddings.
// Quirks: transformers 5 takes the activation from `hidden_act` and turns the legacy "gelu" of the
// official configs into gelu_pytorch_tanh; 4.46 read `hidden_activation` instead (null meaning
// gelu_pytorch_tanh). A config where the two releases would pick different functions is refused.
// The sqrt(d_model) normalizer is rounded to the model dtype, as transformers does. Gemma 2 is a
// different architecture (Gemma2ForCausalLM: soft-capping, extra norms) and is not served here.
#include <cmath>

#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

bool is_tanh_gelu(const std::string& act) {
  return act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast" || act == "gelu";
}

ModelConfig parse_gemma(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/true);
  cfg.architecture = "gemma";
  cfg.hf_architecture = "GemmaForCausalLM";
  cfg.d_head = cfg_int_or(c, "head_dim", 256);  // GemmaConfig's default, not d_model / n_head
  cfg.rope.rotary_dim = cfg.d_head;
  const std::string act = cfg_str_or(c, "hidden_act", "gelu_pytorch_tanh");  // "gelu" -> tanh gelu
  if (!is_tanh_gelu(act))
    throw ModelError("config.json: hidden_act '" + act + "' is not supported for Gemma (gelu_pytorch_tanh only)");
  const std::string legacy = cfg_str_or(c, "hidden_activation", "gelu_pytorch_tanh");
  if (legacy != "gelu_pytorch_tanh" && legacy != "gelu_new" && legacy != "gelu_fast")
    throw ModelError("config.json: hidden_activation '" + legacy + "' (read by transformers 4.x) and hidden_act '" +
                     act + "' (read by 5.x) give different activations; refusing an ambiguous checkpoint");
  if (cfg_bool_or(c, "use_bidirectional_attention", false))
    throw ModelError("config.json: use_bidirectional_attention is true; lens implements causal attention only");
  cfg.mlp = MlpKind::kGeGluTanh;
  cfg.norm_plus_one = true;
  cfg.embed_scale = std::sqrt(static_cast<double>(cfg.d_model));
  return cfg;
}

}  // namespace

ArchSpec gemma_arch() { return {"gemma", {"GemmaForCausalLM"}, parse_gemma, load_llama_like}; }

}  // namespace lens
