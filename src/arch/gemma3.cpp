// Gemma 3 text (Gemma3ForCausalLM, model_type gemma3_text): Gemma 2's block (src/arch/gemma2.cpp)
// plus a per-head (1 + w) RMSNorm of queries and keys before the rotation, two RoPEs (full
// attention layers: rope_parameters.full_attention, theta 1e6 by default; sliding layers:
// rope_parameters.sliding_attention, theta 1e4 by default) and every sliding_window_pattern-th layer
// (default 6) full when layer_types is absent. No soft-capping by default; transformers 5.23's
// Gemma3Attention never applies attn_logit_softcapping even when set, so lens does not either.
// 4.x layout, as Gemma3TextConfig.convert_rope_params_to_dict reads it: rope_scaling updates the
// full-attention rope only, rope_theta is its theta, rope_local_base_freq the sliding layers'.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_gemma3(ConfigReader& c) {
  const int64_t pattern = cfg_int_or(c, "sliding_window_pattern", 6);
  if (pattern <= 0) throw ModelError("config.json: sliding_window_pattern must be positive");
  ModelConfig cfg = parse_gemma2_like(c, "Gemma 3", /*default_attn_cap=*/0.0, /*default_final_cap=*/0.0, pattern);
  cfg.architecture = "gemma3_text";
  cfg.hf_architecture = "Gemma3ForCausalLM";
  cfg.attn_softcap = 0.0;  // read above, but Gemma3Attention does not pass it to the attention function
  c.ignore({"_sliding_window_pattern"});  // written by save_pretrained, never read back (layer_types is)
  cfg.qk_norm = QkNorm::kPerHeadBeforeRope;
  RopeDefaults full, local;
  full.theta = 1e6;
  local.theta = 1e4;
  local.theta_key = "rope_local_base_freq";
  cfg.rope = read_rope_for_layer_type(c, full, "full_attention");
  cfg.rope_local = read_rope_for_layer_type(c, local, "sliding_attention");
  for (RopeConfig* r : {&cfg.rope, &*cfg.rope_local}) {
    if (r->partial_rotary_factor != 1.0)
      throw ModelError("config.json: partial_rotary_factor is not used by Gemma 3's attention in transformers");
    r->rotary_dim = cfg.d_head;
  }
  if (cfg.d_head % 2 != 0) throw ModelError("config.json: head_dim must be even for RoPE");
  // Sliding layers (window > 0 by parse_gemma2_like) rotate with the local rope.
  for (auto& s : cfg.layers) s.local_rope = s.window > 0;
  return cfg;
}

}  // namespace

ArchSpec gemma3_text_arch() {
  return {"gemma3_text", {"Gemma3ForCausalLM"}, parse_gemma3, load_gemma2_like};
}

}  // namespace lens
