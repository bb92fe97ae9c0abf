// Qwen3 (Qwen3ForCausalLM): Qwen2's sliding-window rules on the LLaMA layout, plus a per-head
// RMSNorm of queries and keys over head_dim (q_norm / k_norm, before the rotation), no q/k/v biases
// unless attention_bias, and head_dim 128 by default (not d_model / n_head).
#include "arch/arch.h"

namespace lens {
namespace {

ModelConfig parse_qwen3(ConfigReader& c) {
  ModelConfig cfg = parse_qwen2_like(c, "Qwen3");
  cfg.architecture = "qwen3";
  cfg.hf_architecture = "Qwen3ForCausalLM";
  cfg.d_head = cfg_int_or(c, "head_dim", 128);
  cfg.rope.rotary_dim = cfg.d_head;
  cfg.qk_norm = QkNorm::kPerHeadBeforeRope;
  return cfg;
}

}  // namespace

ArchSpec qwen3_arch() { return {"qwen3", {"Qwen3ForCausalLM"}, parse_qwen3, load_llama_like}; }

}  // namespace lens
