// Architecture-neutral description of a decoder-only transformer, filled from a Hugging Face
// config.json by the architecture table (src/arch). The model code reads only this struct: a
// family is a choice of the parts below (norm, its placement, attention extras, position scheme,
// MLP, multipliers), never a name tested in nn/, model/ or lens/ code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lens {

enum class NormKind { kLayerNorm, kRmsNorm };
// gated kinds use gate/up/down; the others up/down only
enum class MlpKind { kGelu, kGeluTanh, kSwiGlu, kGeGluTanh, kReluSquared, kXielu };
enum class PosKind { kLearned, kRotary };
// Where a block's norms sit around each sub-layer f (attention or MLP):
//   kPre      x + f(norm(x))              (LLaMA, GPT-2)
//   kPost     x + norm(f(x))              (EXAONE 4, OLMo 2)
//   kSandwich x + post_norm(f(norm(x)))   (GLM-4, Gemma 2)
enum class NormPlacement { kPre, kPost, kSandwich };
// How the rotary dims of a head pair up: (i, i + rd/2) as HF's rotate_half, or (2i, 2i + 1) as GPT-J.
enum class RopePairing { kHalf, kInterleaved };
// RMSNorm of queries and keys: per head over d_head (Qwen3), before or after the rotation, or over
// the whole projection (n_head * d_head for q, n_head_kv * d_head for k) before it (OLMo 2).
enum class QkNorm { kNone, kPerHeadBeforeRope, kPerHeadAfterRope, kWholeBeforeRope };

struct RopeConfig {
  // default | linear | dynamic | yarn | longrope | llama3 | ntk_alpha, with transformers' formulas
  // (modeling_rope_utils.py; see src/nn/rope.cpp).
  std::string type = "default";
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;
  int64_t rotary_dim = 0;  // dims of each head that rotate (partial rotary: < d_head)
  RopePairing pairing = RopePairing::kHalf;
  std::optional<double> factor;  // linear, dynamic, yarn, llama3 (required there); longrope (optional)
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position = 0;  // llama3, yarn, longrope
  int64_t max_position = 0;            // config.max_position_embeddings (dynamic; yarn/longrope factor default)
  std::optional<double> attention_factor;  // yarn, longrope: cos/sin scale (derived when absent)
  std::optional<double> mscale, mscale_all_dim;  // yarn
  double beta_fast = 32.0, beta_slow = 1.0;      // yarn
  bool truncate = true;                          // yarn
  std::vector<double> short_factor, long_factor;  // longrope, rotary_dim / 2 each
  std::optional<double> alpha;  // ntk_alpha (HunYuan's "dynamic" with alpha): base * alpha^(rd/(rd-2)), fixed
};

/// What differs between the layers of one model (from layer_types, no_rope_layers, ...).
struct LayerSpec {
  int64_t window = 0;     // sliding window: query i sees keys j with i - j < window; 0 = full causal
  bool rotary = true;     // false: this layer applies no rotary embedding (NoPE layer)
  bool local_rope = false;  // true: rotate with ModelConfig::rope_local instead of rope
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
  int64_t n_ctx = 0;            // learned positions: a hard limit; rotary: only the size of the cached tables
  NormKind norm = NormKind::kLayerNorm;
  double norm_eps = 1e-5;
  bool norm_plus_one = false;   // Gemma: RMSNorm scales by (1 + w)
  NormPlacement norm_placement = NormPlacement::kPre;
  QkNorm qk_norm = QkNorm::kNone;
  NormKind qk_norm_type = NormKind::kRmsNorm;  // the q/k norm's kind (StableLM, Cohere: LayerNorm)
  double clip_qkv = 0.0;        // OLMo 1: q, k and v clamped to [-clip, clip] after the projections; 0 = none
  MlpKind mlp = MlpKind::kGeluTanh;
  PosKind pos = PosKind::kLearned;
  RopeConfig rope;
  std::optional<RopeConfig> rope_local;  // a second rotary for layers marked local_rope
  bool parallel_attn = false;   // GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x))
  bool tied_embeddings = false;
  // Which linear layers carry biases (LLaMA-like loaders require exactly these and load no others,
  // as transformers builds the modules from the config and drops unexpected checkpoint tensors).
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  double embed_scale = 1.0;     // Gemma: sqrt(d_model); Granite: embedding_multiplier
  bool embed_scale_in_dtype = true;  // round embed_scale to the weights' dtype first (Gemma does; Granite does not)
  double attn_scale = 0.0;      // softmax scale; 0 means 1/sqrt(d_head)
  double attn_softcap = 0.0;    // Gemma 2: scaled scores s -> tanh(s / cap) * cap before the mask; 0 = none
  double residual_multiplier = 1.0;  // Granite: x + m * f(x)
  double logits_divisor = 1.0;       // Granite: logits / logits_scaling
  double logit_scale = 1.0;          // Cohere: logits * logit_scale
  double final_softcap = 0.0;        // Gemma 2/3: logits -> tanh(logits / cap) * cap (after the divisor); 0 = none
  int64_t sliding_window = 0;   // the window of every layer when `layers` is empty; 0 = all
  std::vector<LayerSpec> layers;  // per layer; empty = every layer alike (sliding_window, rotary if pos)
  std::optional<int64_t> bos_id;
  std::optional<int64_t> eos_id;
  // config.json keys that lens neither reads nor knows to be harmless (reported, refused with --strict).
  std::vector<std::string> ignored_keys;

  /// Longest input lens runs: max_position_embeddings, except for dynamic RoPE, whose whole point is
  /// to rescale past it (transformers recomputes the frequencies there).
  bool runs_past_context() const { return pos == PosKind::kRotary && rope.type == "dynamic"; }

  /// The spec of layer l (from `layers`, or the model-wide defaults).
  LayerSpec layer(int64_t l) const {
    if (!layers.empty()) return layers.at(static_cast<size_t>(l));
    LayerSpec s;
    s.window = sliding_window;
    s.rotary = pos == PosKind::kRotary;
    return s;
  }
};

}  // namespace lens
