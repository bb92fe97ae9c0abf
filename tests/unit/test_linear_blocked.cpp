// linear_native_blocked (nn/layers.h): the bfloat16 unembedding done in row blocks must give the
// product of the whole input, in shape, dtype and value. Tolerance: one bfloat16 rounding step of the
// largest output, 2^-8 max|y|: each block is its own matmul call, which may sum in another order
// before rounding to bfloat16; float32 weights must agree to float32 round-off (1e-5 max|y|).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "nn/layers.h"
#include "test_util.h"

namespace lens {
namespace {

void expect_blocked_matches(at::ScalarType dt, int64_t block, double rel_tol) {
  at::manual_seed(7);
  LinearWeights l{(at::randn({300, 16}) * 0.2).to(dt), (at::randn({300}) * 0.1).to(dt)};
  const at::Tensor x = at::randn({2, 37, 16});
  const at::Tensor whole = linear_native(x, l);
  const at::Tensor blocked = linear_native_blocked(x, l, block);
  ASSERT_EQ(blocked.sizes(), whole.sizes());
  EXPECT_EQ(blocked.scalar_type(), dt);
  const double scale = whole.abs().max().item<double>();
  const double d = test::max_abs_diff(blocked, whole);
  std::printf("%s, blocks of %ld rows: max |diff| = %.3g (max |y| %.3g)\n", c10::toString(dt), static_cast<long>(block),
              d, scale);
  EXPECT_LE(d, rel_tol * scale);
}

TEST(LinearBlocked, Bfloat16BlocksMatchTheWholeProduct) {
  for (int64_t block : {1, 5, 73, 74, 1000}) expect_blocked_matches(at::kBFloat16, block, 1.0 / 256);
}

TEST(LinearBlocked, Float32BlocksMatchTheWholeProduct) {
  for (int64_t block : {3, 74}) expect_blocked_matches(at::kFloat, block, 1e-5);
}

}  // namespace
}  // namespace lens
