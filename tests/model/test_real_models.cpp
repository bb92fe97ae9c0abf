// Real small checkpoints from ../shared/models against peer implementations' outputs in
// ../shared/reference: stories260K (LLaMA, sentencepiece) vs llama2.c run.c, capp-gpt2-tiny
// (GPT-2) vs llm.c. Tolerance 1e-4 max abs on logits: the reference README reports an
// independent float32 forward within 1.4e-5 of run.c; 1e-4 leaves room for summation order.
#include <c10/core/InferenceMode.h>

#include "lens/lens.h"
#include "lens/model.h"
#include "lens/tokenizer.h"
#include "test_util.h"

namespace lens {
namespace {

constexpr double kTol = 1e-4;

at::Tensor logits_of(Model& m, const std::vector<int64_t>& ids, Hooks* hooks = nullptr) {
  c10::InferenceMode guard;
  return m.forward(at::tensor(ids, at::kLong).unsqueeze(0), hooks)[0];
}

class Stories : public ::testing::TestWithParam<std::string> {};

TEST_P(Stories, LogitsMatchLlama2c) {
  const auto dir = test::shared_dir() / "models" / GetParam();
  const auto ref_dir = test::shared_dir() / "reference" / "stories260K";
  LENS_REQUIRE_SHARED(dir);
  auto model = Model::load(dir, {"float32", "cpu"});
  const auto ids = test::read_json(ref_dir / "logits_prompt.ids.json")["prompt_token_ids"].get<std::vector<int64_t>>();
  const auto ref = test::read_json(ref_dir / "logits_once_upon_a_time_girl.json");
  at::Tensor logits = logits_of(*model, ids);
  std::vector<at::Tensor> rows;
  for (const auto& p : ref["positions"]) rows.push_back(test::json_tensor(p["logits"]));
  at::Tensor want = at::stack(rows);
  const double d = test::max_abs_diff(logits, want);
  std::printf("%s vs llama2.c run.c logits (12 positions x 512): max |diff| = %.3g\n", GetParam().c_str(), d);
  EXPECT_LE(d, kTol);
  EXPECT_EQ(logits[-1].argmax().item<int64_t>(), 395);  // run.c's next token: "▁named"
}

TEST_P(Stories, GreedyContinuationMatchesLlama2c) {
  // Feeding run.c's whole greedy sequence, the argmax at position i is token i+1.
  const auto dir = test::shared_dir() / "models" / GetParam();
  LENS_REQUIRE_SHARED(dir);
  const auto ref = test::read_json(test::shared_dir() / "reference" / "stories260K" / "once_n64.ids.json");
  const auto all = ref["all_token_ids"].get<std::vector<int64_t>>();
  auto model = Model::load(dir, {"float32", "cpu"});
  at::Tensor argmax = logits_of(*model, all).argmax(-1);
  const int64_t n_prompt = static_cast<int64_t>(ref["prompt_token_ids"].size());
  int mismatches = 0;
  for (int64_t i = n_prompt - 1; i + 1 < static_cast<int64_t>(all.size()); ++i)
    mismatches += argmax[i].item<int64_t>() != all[i + 1];
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Shared, Stories, ::testing::Values("stories260K", "stories260K-untied"));

TEST(Stories260K, SentencepieceMatchesRunC) {
  const auto dir = test::shared_dir() / "models" / "stories260K";
  LENS_REQUIRE_SHARED(dir);
  auto tok = load_tokenizer(dir);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  const auto ref = test::read_json(test::shared_dir() / "reference" / "stories260K" / "logits_prompt.ids.json");
  std::ifstream in(test::shared_dir() / "reference" / "stories260K" / "logits_prompt.txt");
  std::string prompt((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(tok->encode(prompt), ref["prompt_token_ids"].get<std::vector<int64_t>>());
  EXPECT_EQ(tok->token_text(395), " named");
  EXPECT_EQ(tok->decode(tok->encode(prompt, false)), prompt);
}

TEST(Stories260K, LogitLensEndsAtTheModelsPrediction) {
  const auto dir = test::shared_dir() / "models" / "stories260K";
  LENS_REQUIRE_SHARED(dir);
  auto model = Model::load(dir, {"float32", "cpu"});
  LogitLens lens(*model);
  LensOptions opts;
  opts.positions = "11";
  opts.targets = {395};
  const auto ids = test::read_json(test::shared_dir() / "reference" / "stories260K" / "logits_prompt.ids.json")
                       ["prompt_token_ids"].get<std::vector<int64_t>>();
  LensResult r = run_lens(*model, lens, ids, opts);
  ASSERT_EQ(r.layers.size(), 6u);
  EXPECT_TRUE(r.final_ok);
  const auto& last = r.layers.back().positions[0];
  EXPECT_EQ(last.top[0].id, 395);
  EXPECT_EQ(last.targets[0].rank, 1);
  EXPECT_NEAR(last.kl_to_final, 0.0, 1e-6);
  // KL to the final layer shrinks from the embeddings to the last layer.
  EXPECT_GT(r.layers.front().positions[0].kl_to_final, r.layers[4].positions[0].kl_to_final);
}

TEST(CappGpt2Tiny, LogitsAndResidualsMatchLlmC) {
  const auto dir = test::shared_dir() / "models" / "capp-gpt2-tiny";
  LENS_REQUIRE_SHARED(dir);
  const auto ref = test::read_json(test::shared_dir() / "reference" / "capp-gpt2-tiny" / "logits.json");
  auto model = Model::load(dir, {"float32", "cpu"});
  for (const auto& [name, seq] : ref["sequences"].items()) {
    const auto ids = seq["tokens"].get<std::vector<int64_t>>();
    Hooks hooks;
    hooks.keep("blocks.0.hook_resid_pre");
    for (int l = 0; l < 4; ++l) hooks.keep(block_hook_name(l, "hook_resid_post"));
    at::Tensor logits = logits_of(*model, ids, &hooks);
    const double dl = test::max_abs_diff(logits, test::json_tensor(seq["logits"]));
    double dr = test::max_abs_diff(hooks.get("blocks.0.hook_resid_pre")[0], test::json_tensor(seq["residual_stream"][0]));
    for (int l = 0; l < 4; ++l)
      dr = std::max(dr, test::max_abs_diff(hooks.get(block_hook_name(l, "hook_resid_post"))[0],
                                           test::json_tensor(seq["residual_stream"][l + 1])));
    std::printf("capp-gpt2-tiny %s vs llm.c: logits max |diff| = %.3g, residuals max |diff| = %.3g\n", name.c_str(), dl, dr);
    EXPECT_LE(dl, kTol);
    EXPECT_LE(dr, kTol);
  }
}

}  // namespace
}  // namespace lens
