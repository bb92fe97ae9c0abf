// Qwen2 / Qwen2.5 (Qwen2ForCausalLM): the LLaMA layout with biases on q_proj, k_proj and v_proj
// (none on o_proj or the MLP), tied (small models) or untied head, rope_theta and linear/llama3
// rope_scaling. Sliding-window attention applies only when use_sliding_window is true (config.json
// often carries a sliding_window number with use_sliding_window false: then it is ignored, as in
// transformers). When on, the window covers every layer, as transformers 4.46's eager and sdpa paths
// do (its flash-attention path would use max_window_layers instead).
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_qwen2(const nlohmann::json& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "qwen2";
  cfg.hf_architecture = "Qwen2ForCausalLM";
  const std::string act = cfg_str_or(c, "hidden_act", "silu");
  if (act != "silu") throw ModelError("config.json: hidden_act '" + act + "' is not supported for Qwen2 (silu only)");
  parse_rope_scaling(c, cfg);
  if (cfg_bool_or(c, "use_sliding_window", false)) {
    cfg.sliding_window = cfg_int_or(c, "sliding_window", 4096);
    if (cfg.sliding_window <= 0)
      throw ModelError("config.json: use_sliding_window is true but sliding_window is " +
                       std::to_string(cfg.sliding_window));
  }
  return cfg;
}

ModelWeights load_qwen2(const Checkpoint& ck, const ModelConfig& cfg) {
  ModelWeights w = load_llama_like(ck, cfg);
  // Qwen2Attention always has q/k/v biases; a checkpoint without them is not a Qwen2 checkpoint.
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const char* missing = !lw.q.b.defined()   ? "q_proj"
                          : !lw.k.b.defined() ? "k_proj"
                          : !lw.v.b.defined() ? "v_proj"
                                              : nullptr;
    if (missing != nullptr)
      throw ModelError(ck.dir().string() + ": checkpoint has no tensor 'model.layers." + std::to_string(l) +
                       ".self_attn." + missing + ".bias' (Qwen2 has q/k/v biases)");
  }
  return w;
}

}  // namespace

ArchSpec qwen2_arch() { return {"qwen2", {"Qwen2ForCausalLM"}, parse_qwen2, load_qwen2}; }

}  // namespace lens
