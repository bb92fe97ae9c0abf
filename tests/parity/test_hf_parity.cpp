// Parity with Hugging Face transformers: tiny random GPT-2, LLaMA (GQA, untied head), Llama 3 rope
// scaling, GPT-NeoX (parallel and sequential residual, partial rotary), Mistral (sliding window
// shorter than the sequence), Qwen2 (q/k/v biases, tied) and Gemma (scaled embeddings, 1 + w norms,
// GeGLU, head_dim != d_model / n_head), built and run by tests/parity/make_fixtures.py. Every block's
// resid_post, the embeddings, the final norm, the attention patterns and the logits must match in float32.
// Tolerance 1e-4 (max abs): float32 round-off over 3 layers with values of magnitude ~10 stays
// below 1e-5; a wrong op (norm eps, rope layout, GQA grouping) gives differences of 0.1 or more.
#include <c10/core/InferenceMode.h>

#include "lens/lens.h"
#include "lens/model.h"
#include "test_util.h"

namespace lens {
namespace {

constexpr double kTol = 1e-4;

class HfParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfParity, EveryHookPointMatchesTransformers) {
  const auto dir = test::fixtures_dir() / GetParam();
  const auto ref = test::read_json(dir / "reference.json");
  auto model = Model::load(dir, {"float32", "cpu"});
  const auto& cfg = model->config();
  std::vector<int64_t> ids = ref["input_ids"].get<std::vector<int64_t>>();

  c10::InferenceMode guard;
  Hooks hooks;
  hooks.keep("blocks.0.hook_resid_pre");
  hooks.keep("ln_final.hook_normalized");
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    hooks.keep(block_hook_name(l, "hook_resid_post"));
    hooks.keep(block_hook_name(l, "attn.hook_pattern"));
  }
  at::Tensor logits = model->forward(at::tensor(ids, at::kLong).unsqueeze(0), &hooks)[0];

  double worst = 0;
  auto check = [&](const std::string& what, const at::Tensor& got, const nlohmann::json& want) {
    at::Tensor w = test::json_tensor(want);
    ASSERT_EQ(got.sizes(), w.sizes()) << what;
    const double d = test::max_abs_diff(got, w);
    worst = std::max(worst, d);
    std::printf("  %-28s max |diff| = %.3g\n", what.c_str(), d);
    EXPECT_LE(d, kTol) << what;
  };
  check("embed (resid_pre 0)", hooks.get("blocks.0.hook_resid_pre")[0], ref["embed"]);
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    check("blocks." + std::to_string(l) + ".hook_resid_post", hooks.get(block_hook_name(l, "hook_resid_post"))[0],
          ref["resid_post"][l]);
    check("blocks." + std::to_string(l) + ".attn.hook_pattern", hooks.get(block_hook_name(l, "attn.hook_pattern"))[0],
          ref["attentions"][l]);
  }
  check("ln_final.hook_normalized", hooks.get("ln_final.hook_normalized")[0], ref["ln_final"]);
  check("logits", logits, ref["logits"]);
  std::printf("%s: worst max |diff| over all hook points = %.3g (tolerance %.0e)\n", GetParam().c_str(), worst, kTol);
}

TEST_P(HfParity, AttentionRowsSumToOneAndAreCausal) {
  const auto dir = test::fixtures_dir() / GetParam();
  const auto ref = test::read_json(dir / "reference.json");
  auto model = Model::load(dir, {"float32", "cpu"});
  c10::InferenceMode guard;
  Hooks hooks;
  hooks.keep(block_hook_name(0, "attn.hook_pattern"));
  model->forward(at::tensor(ref["input_ids"].get<std::vector<int64_t>>(), at::kLong).unsqueeze(0), &hooks);
  at::Tensor pat = hooks.get(block_hook_name(0, "attn.hook_pattern"))[0];  // (H, T, T)
  EXPECT_LE((pat.sum(-1) - 1).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(pat.triu(1).abs().max().item<double>(), 0.0);
}

TEST_P(HfParity, LogitLensLastLayerEqualsModelLogits) {
  const auto dir = test::fixtures_dir() / GetParam();
  const auto ref = test::read_json(dir / "reference.json");
  auto model = Model::load(dir, {"float32", "cpu"});
  LogitLens lens(*model);
  LensOptions opts;
  opts.top_k = 3;
  auto ids = ref["input_ids"].get<std::vector<int64_t>>();
  LensResult r = run_lens(*model, lens, ids, opts);
  ASSERT_EQ(static_cast<int64_t>(r.layers.size()), model->config().n_layer + 1);
  EXPECT_TRUE(r.final_ok) << r.final_max_abs_diff;
  // The lens's last layer agrees with the reference logits: same top-1 and ~zero KL.
  at::Tensor want = test::json_tensor(ref["logits"]);
  for (const auto& p : r.layers.back().positions) {
    EXPECT_EQ(p.top[0].id, want[p.pos].argmax().item<int64_t>());
    EXPECT_LE(p.kl_to_final, 1e-6);
    EXPECT_EQ(p.final_top1.rank, 1);
  }
  // Earlier layers differ from the final one (the tiny models do real work per layer).
  EXPECT_GT(r.layers.front().positions.back().kl_to_final, 1e-3);
}

TEST_P(HfParity, Bfloat16StaysCloseToFloat32) {
  // bf16 weights (8-bit mantissa) with float32 activations: logits within 5% of their range.
  const auto dir = test::fixtures_dir() / GetParam();
  const auto ref = test::read_json(dir / "reference.json");
  auto model = Model::load(dir, {"bfloat16", "cpu"});
  EXPECT_EQ(model->dtype_name(), "bfloat16");
  c10::InferenceMode guard;
  at::Tensor logits = model->forward(at::tensor(ref["input_ids"].get<std::vector<int64_t>>(), at::kLong).unsqueeze(0))[0];
  at::Tensor want = test::json_tensor(ref["logits"]);
  const double range = (want.max() - want.min()).item<double>();
  const double d = test::max_abs_diff(logits, want);
  std::printf("bf16 vs fp32 reference logits: max |diff| = %.3g (range %.3g)\n", d, range);
  EXPECT_LE(d, 0.05 * range);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfParity,
                         ::testing::Values("tiny-gpt2", "tiny-llama", "tiny-llama3", "tiny-gpt-neox",
                                           "tiny-gpt-neox-seq", "tiny-mistral", "tiny-qwen2", "tiny-gemma"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;  // gtest names: letters, digits, underscores
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace lens
