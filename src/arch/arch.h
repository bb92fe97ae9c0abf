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
ArchSpec gpt_neox_arch();
ArchSpec mistral_arch();
ArchSpec qwen2_arch();
ArchSpec gemma_arch();

// The LLaMA layout shared by Mistral, Qwen2 and Gemma (src/arch/llama.cpp): config keys
// num_hidden_layers / hidden_size / num_attention_heads / num_key_value_heads / head_dim /
// intermediate_size / rms_norm_eps / rope_theta / tie_word_embeddings and "model.layers.{l}.self_attn.q_proj"
// style names. The caller sets architecture names, activation and anything else its family changes.
ModelConfig parse_llama_like(const nlohmann::json& c, bool default_tied);
ModelWeights load_llama_like(const Checkpoint& ck, const ModelConfig& cfg);

/// Fills cfg.rope's scaling from config.json "rope_scaling" (null / "default": none; "linear", "llama3");
/// any other type is a ModelError naming it.
void parse_rope_scaling(const nlohmann::json& c, ModelConfig& cfg);
/// Throws ModelError when config.json has a non-default "rope_scaling" that `family` ignores in transformers.
void reject_rope_scaling(const nlohmann::json& c, const std::string& family);

// Helpers for reading config.json with clear errors.
int64_t cfg_int(const nlohmann::json& c, const std::string& key);
int64_t cfg_int_or(const nlohmann::json& c, const std::string& key, int64_t fallback);
double cfg_num_or(const nlohmann::json& c, const std::string& key, double fallback);
std::string cfg_str_or(const nlohmann::json& c, const std::string& key, const std::string& fallback);
bool cfg_bool_or(const nlohmann::json& c, const std::string& key, bool fallback);
std::optional<int64_t> cfg_opt_int(const nlohmann::json& c, const std::string& key);

}  // namespace lens
