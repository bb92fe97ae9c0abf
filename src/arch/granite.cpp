// Granite (GraniteForCausalLM): the LLaMA layout with four multipliers: embeddings times
// embedding_multiplier, attention softmax scale = attention_multiplier (replacing 1/sqrt(d_head)),
// each sub-layer's output times residual_multiplier before the residual add, and logits divided by
// logits_scaling. The lens reads every layer through the same division (Model::unembed).
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_granite(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "granite";
  cfg.hf_architecture = "GraniteForCausalLM";
  read_silu_act(c, cfg, "Granite");
  cfg.embed_scale = cfg_num_or(c, "embedding_multiplier", 1.0);
  cfg.embed_scale_in_dtype = false;  // inputs_embeds * python float
  cfg.attn_scale = cfg_num_or(c, "attention_multiplier", 1.0);
  cfg.residual_multiplier = cfg_num_or(c, "residual_multiplier", 1.0);
  cfg.logits_divisor = cfg_num_or(c, "logits_scaling", 1.0);
  if (cfg.attn_scale <= 0 || cfg.logits_divisor == 0)
    throw ModelError("config.json: attention_multiplier must be positive and logits_scaling non-zero");
  return cfg;
}

}  // namespace

ArchSpec granite_arch() { return {"granite", {"GraniteForCausalLM"}, parse_granite, load_llama_like}; }

}  // namespace lens
