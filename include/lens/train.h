// Tuned-lens training: the frozen model runs under inference mode and only its residual streams
// are kept; each translator is then trained by autograd through final_norm + unembed from h' alone.
// Defaults are the tuned-lens package's: KL(final || layer) summed over layers, SGD with Nesterov
// momentum 0.9 and step size lr * (1 - momentum), weight decay 1e-3, gradient norm clipped to 1,
// linear decay to zero, 250 steps of 2^18 tokens. Deterministic for a seed (and thread count);
// checkpoints hold parameters, momentum buffers and the step, so a resumed run equals an
// uninterrupted one.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "lens/model.h"
#include "lens/tuned_lens.h"

namespace lens {

enum class LensLoss { kKL, kCE };

/// Loss of one layer's lens logits (B, T, V), averaged over tokens.
/// kKL: target is the final layer's log-probs (B, T, V); KL(final || lens) at every position.
/// kCE: target is the token ids (B, T); cross-entropy of positions 0..T-2 to tokens 1..T-1.
at::Tensor lens_loss(const at::Tensor& logits, const at::Tensor& target, LensLoss kind);

/// The same loss's value and its gradient with respect to `logits`, computed directly
/// ((softmax - p) / n for KL, (softmax - onehot) / n for CE) rather than through autograd:
/// training backpropagates this from the logits, which saves the log-softmax graph per layer.
/// `target` for kKL holds final-layer log-probs; for kCE token ids.
std::pair<double, at::Tensor> lens_loss_grad(const at::Tensor& logits, const at::Tensor& target, LensLoss kind);

/// lens_loss_grad for G layers at once: `logits` (G, B, T, V) against one `target`; returns each
/// layer's loss and `scale` times the gradient (G, B, T, V) of each layer's loss w.r.t. its logits.
/// With `overwrite_logits`, float32 CPU logits (KL loss) receive the gradient in their own storage
/// (returned as a view of it) instead of a new tensor: the trainer no longer needs their values, and
/// writing 16 MB of fresh pages per micro-batch cost more than the loss itself. Autograd still
/// checks that no backward function saved them (version counter).
std::pair<std::vector<double>, at::Tensor> lens_loss_grad_layers(const at::Tensor& logits, const at::Tensor& target,
                                                                  LensLoss kind, double scale = 1.0,
                                                                  bool overwrite_logits = false);

struct TrainOptions {
  int64_t steps = 250;
  int64_t tokens_per_step = 1 << 18;  // must be a multiple of the sequence length
  int64_t batch_size = 1;             // sequences per forward pass (gradients accumulate to a step)
  int64_t workers = 0;                // micro-batches run side by side, one thread each; 0 = one per
                                      // intra-op thread (at::get_num_threads()), at most the micro-batches
                                      // of a step. The result depends on it only through float rounding.
  double lr = 1.0;                    // lr scale: the SGD step size is lr * (1 - momentum)
  double momentum = 0.9;
  double weight_decay = 1e-3;
  int64_t warmup_steps = 0;           // linear warmup, then linear decay to zero at `steps`
  double clip_norm = 1.0;             // total gradient norm over all translators
  LensLoss loss = LensLoss::kKL;
  uint64_t seed = 42;                 // order of sequences
  bool shuffle = true;                // false: visit sequences in file order (0, 1, 2, ...), every pass
  int64_t checkpoint_every = 0;       // steps; 0 = no checkpoints
  int64_t stop_after = 0;             // stop (with a checkpoint) after this step; 0 = run to the end
  bool resume = false;                // continue from <output>/checkpoints
  std::filesystem::path output;       // lens directory
};

struct TrainProgress {
  int64_t step = 0, steps = 0;
  double loss = 0;         // this step's loss summed over layers (nats)
  double lr = 0;           // SGD step size used for this step
  double grad_norm = 0;    // before clipping
  double tokens_per_s = 0;
  double eta_s = 0;
  std::vector<double> layer_loss;  // per translator
};

struct TrainResult {
  int64_t start_step = 0;     // > 0 when resumed
  int64_t steps_done = 0;     // last completed step
  bool finished = false;      // all steps done and the lens saved to `output`
  int64_t tokens = 0;         // tokens run through the model in this process
  double seconds = 0;         // wall time of the training loop in this process
  std::vector<double> last_layer_loss;
};

/// Trains `lens` on `sequences` (N, T) int64 and saves it to opts.output (and checkpoints below
/// it). Throws UsageError for inconsistent options (including a resume whose checkpoint was made
/// with other options) and ModelError for an unreadable checkpoint.
TrainResult train_tuned_lens(Model& model, TunedLens& lens, const at::Tensor& sequences, const TrainOptions& opts,
                             const std::function<void(const TrainProgress&)>& progress = {});

/// Learning-rate multiplier of step `step` (0-based): linear warmup over `warmup` steps, then linear
/// decay reaching zero after `steps` (the package's schedule; identical to it for warmup 0).
double lr_multiplier(int64_t step, int64_t steps, int64_t warmup);

/// The order in which training visits sequences: sample k of the run is sequence
/// order(k / n)[k % n], each pass a seeded permutation (portable: mt19937_64 + Fisher-Yates);
/// with TrainOptions::shuffle false, order is the identity instead.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace lens
