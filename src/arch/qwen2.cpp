// Qwen2 / Qwen2.5 (Qwen2ForCausalLM): the LLaMA layout with biases on q_proj, k_proj and v_proj
// (none on o_proj or the MLP), tied (small models) or untied head, and sliding-window layers.
// Which layers slide, as transformers 5 decides it: sliding_window counts only when
// use_sliding_window is true (config.json often carries a number with use_sliding_window false:
// then it is ignored); layer_types says which layers slide, and without it (4.x configs) the
// layers from max_window_layers on do.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {

ModelConfig parse_qwen2_like(ConfigReader& c, const std::string& family) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  read_silu_act(c, cfg, family);
  const bool use_sliding = cfg_bool_or(c, "use_sliding_window", false);
  const int64_t window = use_sliding ? cfg_int_or(c, "sliding_window", 4096) : 0;
  if (use_sliding && window <= 0)
    throw ModelError("config.json: use_sliding_window is true but sliding_window is " + std::to_string(window));
  const int64_t max_window_layers = cfg_int_or(c, "max_window_layers", 28);
  std::vector<std::string> types = read_layer_types(c, cfg.n_layer);
  if (types.empty())
    for (int64_t l = 0; l < cfg.n_layer; ++l)
      types.push_back(window > 0 && l >= max_window_layers ? "sliding_attention" : "full_attention");
  for (const auto& t : types)
    if (t == "sliding_attention" && window == 0)
      throw ModelError("config.json: layer_types has sliding_attention layers but use_sliding_window is false "
                       "(transformers would build a window of None)");
  set_layer_windows(cfg, types, window, 0);
  return cfg;
}

namespace {

ModelConfig parse_qwen2(ConfigReader& c) {
  ModelConfig cfg = parse_qwen2_like(c, "Qwen2");
  cfg.architecture = "qwen2";
  cfg.hf_architecture = "Qwen2ForCausalLM";
  cfg.qkv_bias = true;  // Qwen2Attention always has q/k/v biases and none on o_proj
  cfg.o_bias = false;
  c.ignore({"attention_bias"});
  return cfg;
}

}  // namespace

ArchSpec qwen2_arch() { return {"qwen2", {"Qwen2ForCausalLM"}, parse_qwen2, load_llama_like}; }

}  // namespace lens
