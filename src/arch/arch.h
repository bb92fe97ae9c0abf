// The architecture table: each supported Hugging Face architecture is one entry here plus one
// file src/arch/<name>.cpp that maps config.json to ModelConfig and checkpoint tensor names to
// ModelWeights, handling that checkpoint family's quirks in one place. Nothing else in lens
// depends on which architecture is loaded.
// A parse function reads config.json only through ConfigReader, which records what it read: keys
// nobody read and nobody declared harmless end up in ModelConfig::ignored_keys (a warning, or a
// refusal under --strict); keys whose value lens cannot honour are refused by name (exit 4).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arch/config_reader.h"
#include "io/checkpoint.h"
#include "lens/config.h"
#include "model/weights.h"

namespace lens {

struct ArchSpec {
  std::string name;                          // "gpt2", "llama", ...
  std::vector<std::string> hf_architectures;  // config.json "architectures" values it serves
  ModelConfig (*parse_config)(ConfigReader& config);
  ModelWeights (*load_weights)(const Checkpoint& ck, const ModelConfig& cfg);
  // The transformers release whose outputs this family was checked against (parity fixtures).
  std::string parity_checked = "5.23";
};

const std::vector<ArchSpec>& arch_table();

/// The entry serving config.json's "architectures" (or "model_type"); nullptr when unsupported.
const ArchSpec* find_arch(const nlohmann::json& config);

/// Parses config.json with `arch` and fills ignored_keys; throws ModelError on refusal.
ModelConfig parse_model_config(const ArchSpec& arch, const nlohmann::json& config);

/// "GPT2LMHeadModel, LlamaForCausalLM, ..." for error messages and `lens models`.
std::string supported_architectures();

// Per-architecture entries (defined in src/arch/<name>.cpp).
ArchSpec gpt2_arch();
ArchSpec llama_arch();
ArchSpec gpt_neox_arch();
ArchSpec mistral_arch();
ArchSpec qwen2_arch();
ArchSpec gemma_arch();
ArchSpec qwen3_arch();
ArchSpec smollm3_arch();
ArchSpec ministral_arch();
ArchSpec arcee_arch();
ArchSpec apertus_arch();
ArchSpec seed_oss_arch();
ArchSpec hunyuan_dense_arch();
ArchSpec exaone4_arch();
ArchSpec ernie4_5_arch();
ArchSpec glm4_arch();
ArchSpec granite_arch();
ArchSpec gemma2_arch();
ArchSpec gemma3_text_arch();
ArchSpec olmo2_arch();
ArchSpec olmo3_arch();
ArchSpec olmo_arch();
ArchSpec phi3_arch();
ArchSpec phi_arch();
ArchSpec starcoder2_arch();
ArchSpec cohere_arch();
ArchSpec cohere2_arch();
ArchSpec gptj_arch();
ArchSpec gpt_neo_arch();
ArchSpec stablelm_arch();
ArchSpec falcon_arch();

// The LLaMA layout shared by most families (src/arch/llama.cpp): config keys num_hidden_layers /
// hidden_size / num_attention_heads / num_key_value_heads / head_dim / intermediate_size /
// rms_norm_eps / max_position_embeddings / tie_word_embeddings, RoPE from rope_parameters or
// rope_theta + rope_scaling, and "model.layers.{l}.self_attn.q_proj" style names. The caller sets
// architecture names, activation and anything else its family changes.
ModelConfig parse_llama_like(ConfigReader& c, bool default_tied, const RopeDefaults& rope_defaults = {},
                             bool partial_rotary_ok = false);
/// parse_llama_like without the RoPE keys (cfg.rope left default), for families that read their
/// rotary embeddings differently (Gemma 3: one per layer type).
ModelConfig parse_llama_like_dims(ConfigReader& c, bool default_tied);
ModelWeights load_llama_like(const Checkpoint& ck, const ModelConfig& cfg);
/// The MLP activation of a LLaMA-like family from `key` (hidden_act): silu -> SwiGLU; anything
/// else is a ModelError naming the family.
void read_silu_act(ConfigReader& c, ModelConfig& cfg, const std::string& family, const std::string& key = "hidden_act");
/// Qwen2's sliding-window rules (use_sliding_window, sliding_window, max_window_layers, layer_types)
/// on the LLaMA layout with a silu MLP; shared by the families that copy Qwen2's config.
ModelConfig parse_qwen2_like(ConfigReader& c, const std::string& family);
/// Gemma 2's block on the LLaMA layout (src/arch/gemma2.cpp), shared with Gemma 3: (1 + w) RMSNorm,
/// sandwich norms, GeGLU (hidden_activation), sqrt(d_model) embeddings, query_pre_attn_scalar,
/// attention / final logit soft-capping (defaults given), sliding / full layers from layer_types
/// (else every `pattern`-th layer full) with sliding_window. RoPE is left to the caller.
ModelConfig parse_gemma2_like(ConfigReader& c, const std::string& family, double default_attn_cap,
                              double default_final_cap, int64_t pattern);
ModelWeights load_gemma2_like(const Checkpoint& ck, const ModelConfig& cfg);
/// Per-layer windows from layer_types ("sliding_attention" layers get `window`, others 0); an
/// unknown layer type is a ModelError. No layer_types: every layer gets `fallback_window`.
void set_layer_windows(ModelConfig& cfg, const std::vector<std::string>& layer_types, int64_t window,
                       int64_t fallback_window);
/// Declares the config keys every LLaMA-like family knows but that do not change the forward
/// pass, and refuses the ones lens does not implement (pretraining_tp > 1, quantization_config).
void llama_like_common_keys(ConfigReader& c);

// Helpers for reading config.json with clear errors (ConfigReader getters, kept for brevity).
int64_t cfg_int(ConfigReader& c, const std::string& key);
int64_t cfg_int_or(ConfigReader& c, const std::string& key, int64_t fallback);
double cfg_num_or(ConfigReader& c, const std::string& key, double fallback);
std::string cfg_str_or(ConfigReader& c, const std::string& key, const std::string& fallback);
bool cfg_bool_or(ConfigReader& c, const std::string& key, bool fallback);
std::optional<int64_t> cfg_opt_int(ConfigReader& c, const std::string& key);

}  // namespace lens
