// Mistral (MistralForCausalLM): the LLaMA layout (RMSNorm, rotate_half RoPE, SwiGLU, GQA, optional
// head_dim) plus sliding-window attention: with sliding_window = W a query attends only to the last
// W keys, itself included, as transformers' eager/sdpa mask does. sliding_window null (Mistral v0.2+)
// means full causal attention. transformers 4.46 ignores rope_scaling for Mistral, so lens rejects it.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_mistral(const nlohmann::json& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "mistral";
  cfg.hf_architecture = "MistralForCausalLM";
  const std::string act = cfg_str_or(c, "hidden_act", "silu");
  if (act != "silu") throw ModelError("config.json: hidden_act '" + act + "' is not supported for Mistral (silu only)");
  reject_rope_scaling(c, "Mistral");
  cfg.sliding_window = cfg_int_or(c, "sliding_window", 0);
  if (cfg.sliding_window < 0)
    throw ModelError("config.json: sliding_window " + std::to_string(cfg.sliding_window) + " is negative");
  return cfg;
}

ModelWeights load_mistral(const Checkpoint& ck, const ModelConfig& cfg) {
  ModelWeights w = load_llama_like(ck, cfg);
  for (const auto& lw : w.layers)
    if (lw.q.b.defined() || lw.o.b.defined())  // MistralAttention has no biases; refuse to half-use them
      throw ModelError(ck.dir().string() + ": Mistral checkpoint has attention biases, which Mistral does not use");
  return w;
}

}  // namespace

ArchSpec mistral_arch() { return {"mistral", {"MistralForCausalLM"}, parse_mistral, load_mistral}; }

}  // namespace lens
