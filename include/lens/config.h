// Architecture-neutral description of a decoder-only transformer, filled from a Hugging Face
// config.json by the architecture table (src/arch). The model code reads only this struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lens {

enum class NormKind { kLayerNorm, kRmsNorm };
enum class MlpKind { kGelu, kGeluTanh, kSwiGlu, kGeGluTanh };  // gated kinds use gate/up/down
enum class PosKind { kLearned, kRotary };

struct RopeConfig {
  double theta = 10000.0;
  int64_t rotary_dim = 0;  // dims of each head that rotate (partial rotary: < d_head)
  // Frequency scaling ("" = none, "linear", "llama3").
  std::string scaling_type;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

struct ModelConfig {
  std::string architecture;     // short name in the architecture table: "gpt2", "llama", ...
  std::string hf_architecture;  // as in config.json, e.g. "LlamaForCausalLM"
  int64_t n_layer = 0;
  int64_t d_model = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t d_head = 0;
  int64_t d_mlp = 0;
  int64_t vocab_size = 0;
  int64_t n_ctx = 0;
  NormKind norm = NormKind::kLayerNorm;
  double norm_eps = 1e-5;
  bool norm_plus_one = false;   // Gemma: RMSNorm scales by (1 + w)
  MlpKind mlp = MlpKind::kGeluTanh;
  PosKind pos = PosKind::kLearned;
  RopeConfig rope;
  bool parallel_attn = false;   // GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x))
  bool tied_embeddings = false;
  double embed_scale = 1.0;     // Gemma: sqrt(d_model)
  double attn_scale = 0.0;      // softmax scale; 0 means 1/sqrt(d_head)
  int64_t sliding_window = 0;   // Mistral: queries see only their last sliding_window keys (self included); 0 = all
  std::optional<int64_t> bos_id;
  std::optional<int64_t> eos_id;
};

}  // namespace lens
