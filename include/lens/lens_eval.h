// Held-out evaluation of lenses over packed text: per lens layer, cross-entropy to the next token,
// entropy of the lens distribution and KL(final || lens), averaged over tokens; plus the model's own
// final-layer cross-entropy and entropy as baselines. The model runs once per batch for all lenses.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lens/lens.h"
#include "lens/model.h"

namespace lens {

struct LayerEval {
  int64_t layer = 0;
  std::string name;    // hook point
  double ce = 0;       // nats per predicted token (positions 0..T-2 predicting 1..T-1)
  double entropy = 0;  // nats, mean over all positions
  double kl = 0;       // KL(final || lens), nats, mean over all positions
};

struct LensEval {
  std::string lens;  // "logit" | "tuned"
  std::vector<LayerEval> layers;  // lens layers 0..n_layer
};

struct EvalResult {
  int64_t n_sequences = 0;
  int64_t seq_len = 0;
  int64_t n_positions = 0;    // tokens averaged over for entropy and KL
  int64_t n_predictions = 0;  // tokens averaged over for cross-entropy
  double nats_to_bpb = 0;     // multiply nats per token by this for bits per byte
  double final_ce = 0;        // the model's own next-token cross-entropy (nats per token)
  double final_entropy = 0;   // entropy of the model's output distribution (nats)
  std::vector<LensEval> lenses;
};

/// Evaluates `lenses` on `sequences` (N, T) int64, `batch_size` sequences per forward pass.
/// `progress(done, total)` is called after each batch when set.
EvalResult evaluate_lenses(Model& model, const std::vector<const Lens*>& lenses, const at::Tensor& sequences,
                           int64_t batch_size, double nats_to_bpb,
                           const std::function<void(int64_t, int64_t)>& progress = {});

/// JSON document (schema_version 1, "kind": "lens-eval"); metrics in nats per token and bits per byte.
nlohmann::json eval_json(const EvalResult& r);
/// Terminal table: one row per layer, CE / entropy / KL per lens, then the final-layer baselines.
std::string eval_table(const EvalResult& r);

}  // namespace lens
