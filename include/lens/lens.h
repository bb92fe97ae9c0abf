// Lenses: map a layer's residual stream to a next-token distribution. The logit lens applies the
// model's final norm and unembedding directly; the tuned lens first applies a learned per-layer
// affine translator. run_lens reduces each layer to summary statistics as soon as its logits
// exist, so layers x positions x vocab logits are never held at once.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "lens/model.h"

namespace lens {

/// Lens layer index l: 0 is the embedding output (blocks.0.hook_resid_pre),
/// l in 1..n_layer is blocks.{l-1}.hook_resid_post.
std::string lens_layer_hook(int64_t layer);

class Lens {
 public:
  virtual ~Lens() = default;
  /// float32 logits (..., vocab) for residuals `resid` (..., d) taken at lens layer `layer`.
  virtual at::Tensor logits(int64_t layer, const at::Tensor& resid) const = 0;
  /// Logits for several layers at once: resid[i] (P, d) at layers[i] -> (layers.size() * P, vocab),
  /// layer-major. Lenses that share the unembedding override this to do one matmul. With `native`
  /// they may come in the unembedding's own dtype instead of float32 (see Model::unembed).
  virtual at::Tensor logits_many(const std::vector<int64_t>& layers, const std::vector<at::Tensor>& resid,
                                 bool native) const;
  virtual std::string name() const = 0;  // "logit", "tuned"
};

class LogitLens : public Lens {
 public:
  explicit LogitLens(const Model& model) : model_(model) {}
  at::Tensor logits(int64_t layer, const at::Tensor& resid) const override;
  at::Tensor logits_many(const std::vector<int64_t>& layers, const std::vector<at::Tensor>& resid,
                         bool native) const override;
  std::string name() const override { return "logit"; }

 private:
  const Model& model_;
};

struct LensOptions {
  int64_t top_k = 5;
  std::string layers = "all";     // index spec over lens layers 0..n_layer (see parse_index_spec)
  std::string positions = "all";  // index spec over the prompt's positions
  std::vector<int64_t> targets;   // token ids whose rank/prob to report
  bool keep_logprobs = false;     // also return every reported cell's full log-probs (LensResult::logprobs)
  int64_t block_bytes = 16ll << 20;  // run_lenses: positions per block so that one layer's logits fit this
};

/// Parses an index spec over `count` items: "all", "first", "last", or a comma list of indices
/// and ranges "A-B"; negative indices count from the end (-1 = last). Throws UsageError naming
/// `what` for anything out of range or malformed.
std::vector<int64_t> parse_index_spec(const std::string& spec, int64_t count, const std::string& what);

struct TokenProb {
  int64_t id = 0;
  double prob = 0;
  double logit = 0;
};

struct TokenRank {
  int64_t id = 0;
  int64_t rank = 0;  // 1-based: 1 means the lens's top token
  double prob = 0;
};

struct PositionStats {
  int64_t pos = 0;
  double entropy = 0;      // nats
  double kl_to_final = 0;  // KL(final || this layer), nats
  std::vector<TokenProb> top;
  TokenRank final_top1;
  std::vector<TokenRank> targets;
};

struct LayerStats {
  int64_t layer = 0;
  std::string name;  // hook point
  std::vector<PositionStats> positions;
};

struct LensResult {
  std::string lens;  // "logit" | "tuned"
  std::vector<LayerStats> layers;
  double final_max_abs_diff = 0;  // last layer through the lens vs the model's own logits
  double final_tolerance = 0;
  bool final_ok = false;
  at::Tensor logprobs;  // (L, P, vocab) float16 CPU, only with LensOptions::keep_logprobs
};

/// How far the last layer through a lens may be from the model's own `final_logits` (any shape):
/// 1e-4 for float32 logits (float32 round-off of products of different shapes, ~1e-6 measured);
/// for bfloat16 or float16 logits 1e-4 plus one rounding step of that dtype at the largest |logit|,
/// since two products of different shapes may round a value's last bit differently (measured: 0.016
/// on Llama-2-7B bf16 logits near 2-4). A hook capturing the wrong tensor is off by far more.
double final_check_tolerance(const at::Tensor& final_logits);

/// Runs `model` on `ids` (T) and reports `lens` at the chosen layers and positions.
/// Throws InputError for an empty sequence or out-of-range layers/positions/targets.
/// `extra` (may be null) receives the forward pass's hook points too, e.g. for attention capture.
LensResult run_lens(Model& model, const Lens& lens, const std::vector<int64_t>& ids, const LensOptions& opts,
                    Hooks* extra = nullptr);

/// run_lens for several lenses on one forward pass (one result per lens, in order).
std::vector<LensResult> run_lenses(Model& model, const std::vector<const Lens*>& lenses, const std::vector<int64_t>& ids,
                                   const LensOptions& opts, Hooks* extra = nullptr);

/// The final layer's distribution at the lens positions, prepared once and shared by every layer's
/// reduction: its log-probs and probs (P, vocab) plus per-row constants of the KL.
struct FinalDist {
  at::Tensor logprobs;              // (P, V) float32 log-probs; only on the tensor-op path (off the CPU, float16)
  at::Tensor probs;                 // (P, V) float32 probs, contiguous
  std::vector<int64_t> top1;        // (P) argmax, first on ties
  std::vector<double> sum_p_logp;   // (P) sum_v p log p (minus the final entropy)
  std::vector<double> sum_p;        // (P) sum_v p (1 up to round-off)
};

/// From the final layer's logits (P, vocab), or its log-probs (same softmax).
FinalDist prepare_final(const at::Tensor& final_logits);

/// Reduces one layer's logits (P, vocab) against the final layer's distribution at the same rows.
/// float32 and bfloat16 CPU tensors take fused vectorised row loops; others (CUDA, float16) the tensor-op
/// path in float32.
LayerStats reduce_layer(int64_t layer, const at::Tensor& logits, const FinalDist& final,
                        const std::vector<int64_t>& positions, const LensOptions& opts);

/// The same, preparing the final distribution from its log-probs (P, vocab) on every call.
LayerStats reduce_layer(int64_t layer, const at::Tensor& logits, const at::Tensor& final_logprobs,
                        const std::vector<int64_t>& positions, const LensOptions& opts);

/// The same reduction written with tensor ops only (any device); the reference the fused CPU loop
/// is tested against.
LayerStats reduce_layer_tensor_ops(int64_t layer, const at::Tensor& logits, const at::Tensor& final_logprobs,
                                   const std::vector<int64_t>& positions, const LensOptions& opts);

}  // namespace lens
