// SmolLM3 (SmolLM3ForCausalLM): the LLaMA layout where some layers apply no rotary embedding:
// no_rope_layers[l] is 1 for a layer that rotates and 0 for a NoPE layer (default: every
// no_rope_layer_interval-th layer is NoPE). Sliding windows only where use_sliding_window is true
// and layer_types says sliding_attention (by default the NoPE layers). rope_theta defaults to 2e6.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_smollm3(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/true, RopeDefaults{2000000.0});
  cfg.architecture = "smollm3";
  cfg.hf_architecture = "SmolLM3ForCausalLM";
  read_silu_act(c, cfg, "SmolLM3");
  const int64_t interval = cfg_int_or(c, "no_rope_layer_interval", 4);
  std::vector<bool> rope(static_cast<size_t>(cfg.n_layer));
  const auto& nrl = c.raw("no_rope_layers");
  if (nrl.is_null()) {
    if (interval <= 0) throw ModelError("config.json: no_rope_layer_interval must be positive");
    for (int64_t l = 0; l < cfg.n_layer; ++l) rope[l] = (l + 1) % interval != 0;
  } else {
    if (!nrl.is_array() || static_cast<int64_t>(nrl.size()) != cfg.n_layer)
      throw ModelError("config.json: no_rope_layers must be a list of " + std::to_string(cfg.n_layer) + " 0/1 values");
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      const auto& v = nrl[l];
      if (!(v.is_number_integer() || v.is_boolean())) throw ModelError("config.json: no_rope_layers holds " + v.dump());
      rope[l] = v.is_boolean() ? v.get<bool>() : v.get<int64_t>() != 0;
    }
  }
  const bool use_sliding = cfg_bool_or(c, "use_sliding_window", false);
  const int64_t window = cfg_int_or(c, "sliding_window", 0);
  std::vector<std::string> types = read_layer_types(c, cfg.n_layer);
  if (types.empty())
    for (int64_t l = 0; l < cfg.n_layer; ++l)
      types.push_back(use_sliding && window > 0 && !rope[l] ? "sliding_attention" : "full_attention");
  // SmolLM3Attention: sliding only when use_sliding_window and the layer type says so.
  for (auto& t : types)
    if (t == "sliding_attention" && !(use_sliding && window > 0)) t = "full_attention";
  set_layer_windows(cfg, types, window, 0);
  for (int64_t l = 0; l < cfg.n_layer; ++l) cfg.layers[l].rotary = rope[l];
  return cfg;
}

}  // namespace

ArchSpec smollm3_arch() { return {"smollm3", {"SmolLM3ForCausalLM"}, parse_smollm3, load_llama_like}; }

}  // namespace lens
