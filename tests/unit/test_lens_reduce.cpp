// The fused CPU reduction of a lens layer (entropy, KL to final, top-k, ranks, probabilities)
// against the same statistics written with plain tensor ops in float64 on the same float32 inputs,
// on random logits with a GPT-2-sized vocabulary. Tolerance 2e-5 absolute: the fused loops round
// exp to float32 (~1e-7 relative per term) and sum in float within blocks of 512 values, double
// across them (the KL's cancelling sum in double throughout); measured ~1e-6 on KL values of 10-20
// nats. The reference takes the final
// distribution as float64 log_softmax of the same final logits: float32 log_softmax output is
// itself off by up to ~1.5e-5 in total mass, which would show as a KL difference of ~2e-4.
// (The float32 tensor-op path is off by up to ~1.6e-3 in KL here, from float32 sums.)
#include "lens/lens.h"
#include "test_util.h"

namespace lens {
namespace {

TEST(LensReduce, FusedLoopMatchesTensorOps) {
  at::manual_seed(3);
  const int64_t P = 7, V = 50257;
  at::Tensor logits = at::randn({P, V}) * 3;
  at::Tensor final_logits = at::randn({P, V}) * 4;
  final_logits.index_put_({0, 123}, 40.0);  // one very confident final row
  std::vector<int64_t> positions = {0, 1, 2, 3, 4, 5, 6};
  LensOptions opts;
  opts.top_k = 8;
  opts.targets = {5, 50000};
  LayerStats fused = reduce_layer(2, logits, prepare_final(final_logits), positions, opts);
  LayerStats ref = reduce_layer_tensor_ops(2, logits.to(at::kDouble), at::log_softmax(final_logits.to(at::kDouble), -1),
                                           positions, opts);
  ASSERT_EQ(fused.positions.size(), ref.positions.size());
  double worst = 0;
  for (int64_t i = 0; i < P; ++i) {
    const auto& a = fused.positions[i];
    const auto& b = ref.positions[i];
    worst = std::max({worst, std::abs(a.entropy - b.entropy), std::abs(a.kl_to_final - b.kl_to_final)});
    EXPECT_NEAR(a.entropy, b.entropy, 2e-5);
    EXPECT_NEAR(a.kl_to_final, b.kl_to_final, 2e-5);
    ASSERT_EQ(a.top.size(), 8u);
    for (size_t j = 0; j < a.top.size(); ++j) {
      EXPECT_EQ(a.top[j].id, b.top[j].id);
      EXPECT_NEAR(a.top[j].prob, b.top[j].prob, 1e-6);
      EXPECT_FLOAT_EQ(a.top[j].logit, b.top[j].logit);
    }
    EXPECT_EQ(a.final_top1.id, b.final_top1.id);
    EXPECT_EQ(a.final_top1.rank, b.final_top1.rank);
    ASSERT_EQ(a.targets.size(), 2u);
    for (size_t j = 0; j < 2; ++j) {
      EXPECT_EQ(a.targets[j].rank, b.targets[j].rank);
      EXPECT_NEAR(a.targets[j].prob, b.targets[j].prob, 1e-7);
    }
  }
  EXPECT_EQ(fused.positions[0].final_top1.id, 123);
  std::printf("fused vs tensor-op reduction: max |diff| of entropy / KL = %.3g\n", worst);
}

TEST(LensReduce, IdenticalDistributionsHaveZeroKl) {
  at::Tensor logits = at::randn({3, 1000});
  at::Tensor lp = at::log_softmax(logits, -1);
  LensOptions opts;
  LayerStats s = reduce_layer(0, logits, lp, {0, 1, 2}, opts);
  for (const auto& p : s.positions) {
    EXPECT_NEAR(p.kl_to_final, 0.0, 1e-5);
    EXPECT_EQ(p.final_top1.rank, 1);
    EXPECT_EQ(p.top[0].id, p.final_top1.id);
  }
}

}  // namespace
}  // namespace lens
