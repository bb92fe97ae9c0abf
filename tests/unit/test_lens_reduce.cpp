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

void expect_same_stats(const LayerStats& a, const LayerStats& b) {
  ASSERT_EQ(a.positions.size(), b.positions.size());
  for (size_t i = 0; i < a.positions.size(); ++i) {
    const PositionStats& x = a.positions[i];
    const PositionStats& y = b.positions[i];
    EXPECT_EQ(x.entropy, y.entropy);
    EXPECT_EQ(x.kl_to_final, y.kl_to_final);
    ASSERT_EQ(x.top.size(), y.top.size());
    for (size_t j = 0; j < x.top.size(); ++j) {
      EXPECT_EQ(x.top[j].id, y.top[j].id);
      EXPECT_EQ(x.top[j].prob, y.top[j].prob);
      EXPECT_EQ(x.top[j].logit, y.top[j].logit);
    }
    EXPECT_EQ(x.final_top1.id, y.final_top1.id);
    EXPECT_EQ(x.final_top1.rank, y.final_top1.rank);
    EXPECT_EQ(x.final_top1.prob, y.final_top1.prob);
    ASSERT_EQ(x.targets.size(), y.targets.size());
    for (size_t j = 0; j < x.targets.size(); ++j) {
      EXPECT_EQ(x.targets[j].rank, y.targets[j].rank);
      EXPECT_EQ(x.targets[j].prob, y.targets[j].prob);
    }
  }
}

// A bfloat16 model's unembedding writes bfloat16 logits, which the reduction reads directly (widening
// each row into a float32 buffer). Widening is exact, so the statistics must be bit-identical to
// those of the same values handed over as float32.
TEST(LensReduce, BFloat16LogitsGiveTheirFloat32Statistics) {
  at::manual_seed(5);
  const int64_t P = 5, V = 50257;  // V not a multiple of any vector width: the loops' tails run too
  at::Tensor logits = (at::randn({P, V}) * 3).to(at::kBFloat16);
  at::Tensor final_logits = (at::randn({P, V}) * 4).to(at::kBFloat16);
  LensOptions opts;
  opts.top_k = 6;
  opts.targets = {7, 50256};
  const std::vector<int64_t> positions = {0, 1, 2, 3, 4};
  const FinalDist final_bf16 = prepare_final(final_logits);
  const FinalDist final_f32 = prepare_final(final_logits.to(at::kFloat));
  EXPECT_TRUE(at::equal(final_bf16.probs, final_f32.probs));
  EXPECT_EQ(final_bf16.top1, final_f32.top1);
  EXPECT_EQ(final_bf16.sum_p_logp, final_f32.sum_p_logp);
  expect_same_stats(reduce_layer(1, logits, final_bf16, positions, opts),
                    reduce_layer(1, logits.to(at::kFloat), final_f32, positions, opts));
}

// Other dtypes (float16, as CUDA may hand over) take the tensor-op path in float32. Tolerance as
// there: up to ~1.6e-3 in KL from float32 sums (see the top of this file); the ranking is exact.
TEST(LensReduce, Float16LogitsTakeTheTensorOpPath) {
  at::manual_seed(6);
  at::Tensor logits = (at::randn({3, 3000}) * 3).to(at::kHalf);
  at::Tensor final_logits = (at::randn({3, 3000}) * 4).to(at::kHalf);
  LensOptions opts;
  const LayerStats half = reduce_layer(0, logits, prepare_final(final_logits), {0, 1, 2}, opts);
  const LayerStats f32 =
      reduce_layer(0, logits.to(at::kFloat), prepare_final(final_logits.to(at::kFloat)), {0, 1, 2}, opts);
  ASSERT_EQ(half.positions.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(half.positions[i].entropy, f32.positions[i].entropy, 2e-3);
    EXPECT_NEAR(half.positions[i].kl_to_final, f32.positions[i].kl_to_final, 2e-3);
    EXPECT_EQ(half.positions[i].top[0].id, f32.positions[i].top[0].id);
    EXPECT_EQ(half.positions[i].final_top1.rank, f32.positions[i].final_top1.rank);
  }
}

// The run-time check of the last layer: float32 round-off for float32 logits; one rounding step of
// the dtype at the largest |logit| beyond that for bfloat16 and float16 (products of different
// shapes may round a last bit differently there).
TEST(LensReduce, FinalCheckToleranceFollowsTheLogitsDtype) {
  const at::Tensor z = at::tensor({-4.0, 1.0, 3.0});
  EXPECT_EQ(final_check_tolerance(z.to(at::kFloat)), 1e-4);
  EXPECT_DOUBLE_EQ(final_check_tolerance(z.to(at::kBFloat16)), 1e-4 + 4.0 / 128);  // bf16 keeps 8 bits
  EXPECT_DOUBLE_EQ(final_check_tolerance(z.to(at::kHalf)), 1e-4 + 4.0 / 1024);     // float16 keeps 11
}

}  // namespace
}  // namespace lens
