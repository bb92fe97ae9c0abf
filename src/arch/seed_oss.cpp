// Seed-OSS (SeedOssForCausalLM): the LLaMA layout with q/k/v biases (attention_bias, default true),
// an o_proj bias only with attention_out_bias, head_dim 128 by default; residual_dropout is
// training-only.
#include "arch/arch.h"

namespace lens {
namespace {

ModelConfig parse_seed_oss(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "seed_oss";
  cfg.hf_architecture = "SeedOssForCausalLM";
  read_silu_act(c, cfg, "Seed-OSS");
  cfg.d_head = cfg_int_or(c, "head_dim", 128);
  cfg.rope.rotary_dim = cfg.d_head;
  cfg.qkv_bias = cfg_bool_or(c, "attention_bias", true);
  cfg.o_bias = cfg_bool_or(c, "attention_out_bias", false);
  c.ignore({"residual_dropout"});
  return cfg;
}

}  // namespace

ArchSpec seed_oss_arch() { return {"seed_oss", {"SeedOssForCausalLM"}, parse_seed_oss, load_llama_like}; }

}  // namespace lens
