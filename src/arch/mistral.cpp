// Mistral (MistralForCausalLM): the LLaMA layout (RMSNorm, rotate_half RoPE, SwiGLU, GQA, optional
// head_dim) plus sliding-window attention on every layer: with sliding_window = W a query attends
// only to the last W keys, itself included, as transformers' mask does (kv > q - W).
// Quirks: sliding_window null (Mistral v0.2+) means full causal attention, but a config without the
// key gets MistralConfig's default of 4096; transformers 5 applies rope_parameters / rope_scaling
// to Mistral (4.46 ignored them), and ignores layer_types (it warns), so lens reports that key.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_mistral(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "mistral";
  cfg.hf_architecture = "MistralForCausalLM";
  read_silu_act(c, cfg, "Mistral");
  const bool has_key = c.json().contains("sliding_window");
  cfg.sliding_window = has_key ? cfg_int_or(c, "sliding_window", 0) : 4096;
  if (cfg.sliding_window < 0)
    throw ModelError("config.json: sliding_window " + std::to_string(cfg.sliding_window) + " is negative");
  return cfg;
}

}  // namespace

ArchSpec mistral_arch() { return {"mistral", {"MistralForCausalLM"}, parse_mistral, load_llama_like}; }

}  // namespace lens
