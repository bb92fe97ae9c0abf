// The list of supported architectures and config.json helpers shared by src/arch/*.cpp.
#include "arch/arch.h"

#include "lens/error.h"

namespace lens {

const std::vector<ArchSpec>& arch_table() {
  static const std::vector<ArchSpec> kTable = {gpt2_arch(), llama_arch()};
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

bool cfg_bool_or(const nlohmann::json& c, const std::string& key, bool fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  if (!c[key].is_boolean()) throw ModelError("config.json: '" + key + "' is not true/false");
  return c[key].get<bool>();
}

std::optional<int64_t> cfg_opt_int(const nlohmann::json& c, const std::string& key) {
  if (!c.contains(key) || !c[key].is_number_integer()) return std::nullopt;  // null or a list: no single id
  return c[key].get<int64_t>();
}

}  // namespace lens
