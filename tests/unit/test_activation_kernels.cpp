// gelu_tanh (nn/layers.h), lens's vectorised tanh-approximated GELU, against the formula evaluated in
// float64 and against libtorch's own float32 at::gelu(x, "tanh"). Tolerance: (1e-6 + 4e-7 |t|) of the
// value, t = 2 sqrt(2/pi) (x + 0.044715 x^3), plus 1e-34 absolute. The kernel's exp is accurate to
// ~1e-7 relative and the rest is a few float32 operations; for t << 0 the value is ~x e^t, so the
// float32 rounding of t shows multiplied by |t| (up to 87). Below x ~ -10 its exp is clamped at e^-87,
// so it returns x 1.6e-38 (below 1e-34 in magnitude for |x| < 6000) where the true value is smaller
// still. (libtorch's float32 1 + tanh(u) loses the small values entirely: its worst relative error,
// printed, is ~1.)
#include <ATen/ATen.h>

#include <cmath>

#include "nn/layers.h"
#include "test_util.h"

namespace lens {
namespace {

// x/2 (1 + tanh(u)) written as x sigmoid(2u): in float64 1 + tanh(u) itself loses the small values
// for u << 0 (tanh(-12.5) = -1 + 2.8e-11 keeps 5 digits).
at::Tensor reference_gelu_tanh(const at::Tensor& x) {
  const at::Tensor xd = x.to(at::kDouble);
  return xd * at::sigmoid(2 * std::sqrt(2.0 / M_PI) * (xd + 0.044715 * xd.pow(3)));
}

TEST(ActivationKernels, GeluTanhMatchesTheFormula) {
  at::manual_seed(7);
  // A dense sweep over the range where the function bends, random activations of several scales,
  // and an odd length so the vector loop's tail runs.
  const at::Tensor x = at::cat({at::linspace(-40, 40, 80001), at::randn({5003}) * 3, at::randn({777}) * 30});
  const at::Tensor y = gelu_tanh(x);
  const at::Tensor ref = reference_gelu_tanh(x);
  const at::Tensor err = (y.to(at::kDouble) - ref).abs();
  // Where sigmoid(t) ~ e^t (t << 0), float32 rounding of t itself (a few ulp, ~4e-7 relative) moves
  // the value by |t| times that: the bound grows with |t| there.
  const at::Tensor xd = x.to(at::kDouble);
  const at::Tensor t = (2 * std::sqrt(2.0 / M_PI) * (xd + 0.044715 * xd.pow(3))).abs();
  EXPECT_TRUE(at::all(err <= (1e-6 + 4e-7 * t) * ref.abs() + 1e-34).item<bool>());
  const at::Tensor seen = ref.abs() > 1e-30;  // relative differences where the values are not negligible
  const double rel = (err / ref.abs()).masked_select(seen).max().item<double>();
  const double torch_rel =
      ((at::gelu(x, "tanh").to(at::kDouble) - ref).abs() / ref.abs()).masked_select(seen).max().item<double>();
  std::printf("gelu_tanh vs float64 formula: max relative diff %.3g (libtorch's float32 gelu: %.3g)\n", rel, torch_rel);
}

TEST(ActivationKernels, GeluTanhKeepsShapeAndFallsBackForOtherDtypes) {
  const at::Tensor x = at::randn({2, 3, 17}).transpose(1, 2);  // not contiguous
  const at::Tensor y = gelu_tanh(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_TRUE(at::allclose(y, at::gelu(x, "tanh"), 1e-5, 1e-6));
  const at::Tensor xd = x.to(at::kDouble);
  EXPECT_TRUE(at::equal(gelu_tanh(xd), at::gelu(xd, "tanh")));  // not float32: at::gelu itself
}

}  // namespace
}  // namespace lens
