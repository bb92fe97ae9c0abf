// Ministral (MinistralForCausalLM, e.g. Ministral-8B): Mistral's layout with a sliding window per
// layer from layer_types (default: every layer slides when sliding_window is set).
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_ministral(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "ministral";
  cfg.hf_architecture = "MinistralForCausalLM";
  read_silu_act(c, cfg, "Ministral");
  const int64_t window = c.json().contains("sliding_window") ? cfg_int_or(c, "sliding_window", 0) : 4096;
  std::vector<std::string> types = read_layer_types(c, cfg.n_layer);
  if (types.empty()) types.assign(cfg.n_layer, window > 0 ? "sliding_attention" : "full_attention");
  for (const auto& t : types)
    if (t == "sliding_attention" && window <= 0)
      throw ModelError("config.json: layer_types has sliding_attention layers but sliding_window is null");
  set_layer_windows(cfg, types, window, 0);
  return cfg;
}

}  // namespace

ArchSpec ministral_arch() { return {"ministral", {"MinistralForCausalLM"}, parse_ministral, load_llama_like}; }

}  // namespace lens
