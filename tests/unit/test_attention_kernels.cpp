// The CPU attention kernels (nn/layers.h) against plain tensor-op attention in float64, and the
// model's two attention paths (fused when nobody asks for the pattern, materialised scores when
// someone does) against each other on the tiny fixtures. Tolerance 1e-5: both kernels round exp
// to float32 (~1e-7 relative per term) and sum a few hundred terms in float32.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "lens/hooks.h"
#include "lens/model.h"
#include "nn/layers.h"
#include "test_util.h"

namespace lens {
namespace {

// softmax(q k^T) v with query i seeing keys j <= i and i - j < window (window > 0); float64.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t window,
                               at::Tensor* pattern = nullptr) {
  const int64_t T = k.size(2), rep = q.size(2) / T;
  at::Tensor qd = q.to(at::kDouble), kd = k.to(at::kDouble), vd = v.to(at::kDouble);
  at::Tensor scores = at::matmul(qd, kd.transpose(-1, -2));  // (B, G, rep*T, T)
  at::Tensor i = at::arange(T).repeat({rep}).unsqueeze(1), j = at::arange(T).unsqueeze(0);
  at::Tensor hidden = j > i;
  if (window > 0) hidden = hidden.logical_or(i - j >= window);
  scores.masked_fill_(hidden, -std::numeric_limits<double>::infinity());
  at::Tensor p = at::softmax(scores, -1);
  if (pattern != nullptr) *pattern = p;
  return at::matmul(p, vd);
}

TEST(AttentionKernels, FusedAttentionMatchesReference) {
  at::manual_seed(11);
  double worst = 0;
  for (int64_t dh : {8, 12, 32, 64}) {
    for (int64_t window : {0, 5}) {
      const int64_t B = 2, G = 2, rep = 2, T = 37;  // T not a multiple of the 16-key blocks
      at::Tensor q = at::randn({B, G, rep * T, dh}), k = at::randn({B, G, T, dh}), v = at::randn({B, G, T, dh});
      at::Tensor got = fused_causal_attention(q, k, v, window);
      at::Tensor want = reference_attention(q, k, v, window);
      const double diff = (got.to(at::kDouble) - want).abs().max().item<double>();
      worst = std::max(worst, diff);
      EXPECT_LT(diff, 1e-5) << "dh " << dh << " window " << window;
    }
  }
  std::printf("fused causal attention vs float64 reference: max |diff| = %.3g\n", worst);
}

TEST(AttentionKernels, CausalSoftmaxMatchesReference) {
  at::manual_seed(12);
  for (int64_t window : {0, 7}) {
    const int64_t B = 2, G = 3, rep = 2, T = 29, dh = 8;
    at::Tensor q = at::randn({B, G, rep * T, dh}), k = at::randn({B, G, T, dh});
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).contiguous();
    causal_softmax_(scores, window);
    at::Tensor want;
    reference_attention(q, k, at::zeros({B, G, T, dh}), window, &want);
    const double diff = (scores.to(at::kDouble) - want).abs().max().item<double>();
    std::printf("causal softmax (window %ld) vs float64 reference: max |diff| = %.3g\n", static_cast<long>(window), diff);
    EXPECT_LT(diff, 1e-6);
    EXPECT_EQ(scores[0][0][0][1].item<float>(), 0.0f);  // masked entries are exactly 0
  }
}

// A forward that asks for attention patterns takes the materialised path; one that does not,
// the fused one (head dims 8-12 here). Both must give the same residual stream and logits, up to
// float32 round-off relative to their magnitude (Gemma's residuals are ~100s: sqrt(d) scaling).
TEST(AttentionKernels, ModelGivesTheSameResultOnBothPaths) {
  c10::InferenceMode guard;
  for (const char* name : {"tiny-llama", "tiny-mistral", "tiny-gpt2", "tiny-gemma", "tiny-gpt-neox"}) {
    auto model = Model::load(test::fixtures_dir() / name);
    const int64_t n_layer = model->config().n_layer;
    at::Tensor ids = at::randint(0, model->config().vocab_size, {2, 21}, at::kLong);
    Hooks with_pattern, without;
    for (int64_t l = 0; l < n_layer; ++l) {
      with_pattern.keep(block_hook_name(l, "attn.hook_pattern"));
      with_pattern.keep(block_hook_name(l, "hook_resid_post"));
      without.keep(block_hook_name(l, "hook_resid_post"));
    }
    at::Tensor a = model->forward(ids, &with_pattern);
    at::Tensor b = model->forward(ids, &without);
    double diff = (a - b).abs().max().item<double>() / a.abs().max().item<double>();
    for (int64_t l = 0; l < n_layer; ++l) {
      const std::string h = block_hook_name(l, "hook_resid_post");
      const at::Tensor x = with_pattern.get(h);
      diff = std::max(diff, (x - without.get(h)).abs().max().item<double>() / x.abs().max().item<double>());
    }
    std::printf("%s: fused vs materialised attention, max |diff| / max |value| over resid_post and logits = %.3g\n",
                name, diff);
    EXPECT_LT(diff, 1e-5) << name;
  }
}

}  // namespace
}  // namespace lens
