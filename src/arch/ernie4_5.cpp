// ERNIE 4.5 dense (Ernie4_5ForCausalLM): the LLaMA layout with interleaved rotary pairs (2i, 2i+1)
// over the whole head (GLM style, in float32), use_bias for every projection (q, k, v, o and the
// MLP), a tied head by default, head_dim 128 and rope_theta 500000 by default.
#include "arch/arch.h"

namespace lens {
namespace {

ModelConfig parse_ernie(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/true, RopeDefaults{500000.0});
  cfg.architecture = "ernie4_5";
  cfg.hf_architecture = "Ernie4_5ForCausalLM";
  read_silu_act(c, cfg, "ERNIE 4.5");
  cfg.d_head = cfg_int_or(c, "head_dim", 128);
  cfg.rope.rotary_dim = cfg.d_head;
  cfg.rope.pairing = RopePairing::kInterleaved;
  cfg.qkv_bias = cfg.o_bias = cfg.mlp_bias = cfg_bool_or(c, "use_bias", false);
  return cfg;
}

}  // namespace

ArchSpec ernie4_5_arch() { return {"ernie4_5", {"Ernie4_5ForCausalLM"}, parse_ernie, load_llama_like}; }

}  // namespace lens
