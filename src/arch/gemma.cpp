// Gemma (GemmaForCausalLM, Gemma 1): the LLaMA layout with embeddings scaled by sqrt(d_model),
// RMSNorm that scales by (1 + w), a GeGLU MLP with tanh gelu, head_dim independent of
// d_model / n_head (e.g. 256 for gemma-7b) and a head tied to the (unscaled) embeddings.
// Quirks: transformers 4.46 uses `hidden_activation`, and when it is null uses gelu_pytorch_tanh
// whatever `hidden_act` says (gemma-7b's config says "gelu"); the sqrt(d_model) normalizer is
// rounded to the model dtype by the model code, as transformers does. Gemma 2 is a different
// architecture (Gemma2ForCausalLM: soft-capping, extra norms) and is not served here.
#include <cmath>

#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_gemma(const nlohmann::json& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/true);
  cfg.architecture = "gemma";
  cfg.hf_architecture = "GemmaForCausalLM";
  const std::string act = cfg_str_or(c, "hidden_activation", "gelu_pytorch_tanh");
  if (act != "gelu_pytorch_tanh" && act != "gelu_new" && act != "gelu_fast")
    throw ModelError("config.json: hidden_activation '" + act +
                     "' is not supported for Gemma (gelu_pytorch_tanh only)");
  cfg.mlp = MlpKind::kGeGluTanh;
  cfg.norm_plus_one = true;
  cfg.embed_scale = std::sqrt(static_cast<double>(cfg.d_model));
  reject_rope_scaling(c, "Gemma");
  return cfg;
}

}  // namespace

ArchSpec gemma_arch() { return {"gemma", {"GemmaForCausalLM"}, parse_gemma, load_llama_like}; }

}  // namespace lens
