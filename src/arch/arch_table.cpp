// The list of supported architectures and config.json helpers shared by src/arch/*.cpp.
#include "arch/arch.h"

#include "lens/error.h"

namespace lens {

const std::vector<ArchSpec>& arch_table() {
  static const std::vector<ArchSpec> kTable = {gpt2_arch(),    llama_arch(), gpt_neox_arch(),
                                                mistral_arch(), qwen2_arch(), gemma_arch()};
  return kTable;
}

const ArchSpec* find_arch(const nlohmann::json& config) {
  if (config.contains("architectures") && config["architectures"].is_array()) {
    for (const auto& a : config["architectures"]) {
      if (!a.is_string()) continue;
      for (const auto& spec : arch_table())
        for (const auto& hf : spec.hf_architectures)
          if (hf == a.get<std::string>()) return &spec;
    }
    return nullptr;
  }
  if (config.contains("model_type") && config["model_type"].is_string()) {
    for (const auto& spec : arch_table())
      if (spec.name == config["model_type"].get<std::string>()) return &spec;
  }
  return nullptr;
}

std::string supported_architectures() {
  std::string out;
  for (const auto& spec : arch_table())
    for (const auto& hf : spec.hf_architectures) out += (out.empty() ? "" : ", ") + hf;
  return out;
}

int64_t cfg_int(const nlohmann::json& c, const std::string& key) {
  if (!c.contains(key) || !c[key].is_number_integer())
    throw ModelError("config.json: '" + key + "' is missing or not an integer");
  return c[key].get<int64_t>();
}

int64_t cfg_int_or(const nlohmann::json& c, const std::string& key, int64_t fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  return cfg_int(c, key);
}

double cfg_num_or(const nlohmann::json& c, const std::string& key, double fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  if (!c[key].is_number()) throw ModelError("config.json: '" + key + "' is not a number");
  return c[key].get<double>();
}

std::string cfg_str_or(const nlohmann::json& c, const std::string& key, const std::string& fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  if (!c[key].is_string()) throw ModelError("config.json: '" + key + "' is not a string");
  return c[key].get<std::string>();
}

bool cfg_bool_or(const nlohmann::json& c, const std::string& key, bool fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  if (!c[key].is_boolean()) throw ModelError("config.json: '" + key + "' is not true/false");
  return c[key].get<bool>();
}

void parse_rope_scaling(const nlohmann::json& c, ModelConfig& cfg) {
  if (!c.contains("rope_scaling") || c["rope_scaling"].is_null()) return;
  const auto& s = c["rope_scaling"];
  if (!s.is_object()) throw ModelError("config.json: 'rope_scaling' is not an object");
  const std::string type = s.value("rope_type", s.value("type", std::string()));
  if (type == "default") return;
  if (type != "llama3" && type != "linear")
    throw ModelError("config.json: rope_scaling type '" + type + "' is not supported (supported: linear, llama3)");
  cfg.rope.scaling_type = type;
  cfg.rope.factor = cfg_num_or(s, "factor", 1.0);
  cfg.rope.low_freq_factor = cfg_num_or(s, "low_freq_factor", 1.0);
  cfg.rope.high_freq_factor = cfg_num_or(s, "high_freq_factor", 4.0);
  cfg.rope.original_max_position = cfg_int_or(s, "original_max_position_embeddings", 8192);
  if (cfg.rope.factor <= 0) throw ModelError("config.json: rope_scaling factor must be positive");
  if (type == "llama3" && !(cfg.rope.high_freq_factor > cfg.rope.low_freq_factor && cfg.rope.low_freq_factor > 0))
    throw ModelError("config.json: llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor");
}

void reject_rope_scaling(const nlohmann::json& c, const std::string& family) {
  if (!c.contains("rope_scaling") || c["rope_scaling"].is_null()) return;
  const auto& s = c["rope_scaling"];
  const std::string type = s.is_object() ? s.value("rope_type", s.value("type", std::string())) : std::string();
  if (type == "default") return;
  throw ModelError("config.json: rope_scaling " + s.dump() + " is not supported for " + family +
                   " (transformers 4.46 ignores it there, so its meaning is unclear)");
}

std::optional<int64_t> cfg_opt_int(const nlohmann::json& c, const std::string& key) {
  if (!c.contains(key) || !c[key].is_number_integer()) return std::nullopt;  // null or a list: no single id
  return c[key].get<int64_t>();
}

}  // namespace lens
