// The architecture table: each supported Hugging Face architecture is one entry here plus one
// file src/arch/<name>.cpp that maps config.json to ModelConfig and checkpoint tensor names to
// ModelWeights, handling that checkpoint family's quirks in one place. Nothing else in lens
// depends on which architecture is loaded.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "lens/config.h"
#include "model/weights.h"

namespace lens {

struct ArchSpec {
  std::string name;                          // "gpt2", "llama", ...
  std::vector<std::string> hf_architectures;  // config.json "architectures" values it serves
  ModelConfig (*parse_config)(const nlohmann::json& config);
  ModelWeights (*load_weights)(const Checkpoint& ck, const ModelConfig& cfg);
};

const std::vector<ArchSpec>& arch_table();

/// The entry serving config.json's "architectures" (or "model_type"); nullptr when unsupported.
const ArchSpec* find_arch(const nlohmann::json& config);

/// "GPT2LMHeadModel, LlamaForCausalLM, ..." for error messages and `lens models`.
std::string supported_architectures();

// Per-architecture entries (defined in src/arch/<name>.cpp).
ArchSpec gpt2_arch();
ArchSpec llama_arch();

// Helpers for reading config.json with clear errors.
int64_t cfg_int(const nlohmann::json& c, const std::string& key);
int64_t cfg_int_or(const nlohmann::json& c, const std::string& key, int64_t fallback);
double cfg_num_or(const nlohmann::json& c, const std::string& key, double fallback);
bool cfg_bool_or(const nlohmann::json& c, const std::string& key, bool fallback);
std::optional<int64_t> cfg_opt_int(const nlohmann::json& c, const std::string& key);

}  // namespace lens
