// run_lens_batch against run_lens one prompt at a time: right-padded batches of prompts with
// different lengths, positions and targets must give the same statistics (tiny fixtures).
#include "lens/batch.h"

#include "lens/model.h"
#include "test_util.h"

namespace lens {
namespace {

void expect_same(const LensResult& a, const LensResult& b, double& max_diff) {
  ASSERT_EQ(a.layers.size(), b.layers.size());
  EXPECT_EQ(a.final_ok, b.final_ok);
  for (size_t l = 0; l < a.layers.size(); ++l) {
    ASSERT_EQ(a.layers[l].layer, b.layers[l].layer);
    ASSERT_EQ(a.layers[l].positions.size(), b.layers[l].positions.size());
    for (size_t p = 0; p < a.layers[l].positions.size(); ++p) {
      const PositionStats& x = a.layers[l].positions[p];
      const PositionStats& y = b.layers[l].positions[p];
      EXPECT_EQ(x.pos, y.pos);
      max_diff = std::max({max_diff, std::abs(x.entropy - y.entropy), std::abs(x.kl_to_final - y.kl_to_final)});
      ASSERT_EQ(x.top.size(), y.top.size());
      for (size_t k = 0; k < x.top.size(); ++k) {
        EXPECT_EQ(x.top[k].id, y.top[k].id);
        max_diff = std::max({max_diff, std::abs(x.top[k].prob - y.top[k].prob), std::abs(x.top[k].logit - y.top[k].logit)});
      }
      EXPECT_EQ(x.final_top1.id, y.final_top1.id);
      EXPECT_EQ(x.final_top1.rank, y.final_top1.rank);
      ASSERT_EQ(x.targets.size(), y.targets.size());
      for (size_t t = 0; t < x.targets.size(); ++t) {
        EXPECT_EQ(x.targets[t].rank, y.targets[t].rank);
        max_diff = std::max(max_diff, std::abs(x.targets[t].prob - y.targets[t].prob));
      }
    }
  }
  if (a.logprobs.defined() || b.logprobs.defined())
    max_diff = std::max(max_diff, test::max_abs_diff(a.logprobs, b.logprobs) * 1e-3);  // float16: see below
}

TEST(Batch, RunLensBatchEqualsOneByOne) {
  for (const char* name : {"tiny-gpt2", "tiny-llama"}) {
    auto model = Model::load(test::fixtures_dir() / name);
    LogitLens lens(*model);
    const int64_t V = model->config().vocab_size;
    std::vector<std::vector<int64_t>> ids;
    std::vector<LensOptions> opts;
    for (int i = 0; i < 9; ++i) {
      std::vector<int64_t> p;
      for (int t = 0; t < 1 + (i * 5) % 13; ++t) p.push_back((i * 13 + t * 7) % V);
      ids.push_back(p);
      LensOptions o;
      o.top_k = 4;
      o.positions = i % 3 == 0 ? "all" : i % 3 == 1 ? "last" : "0,-1";
      if (i % 4 == 1) o.targets = {3, static_cast<int64_t>(i)};
      o.keep_logprobs = true;
      opts.push_back(o);
    }
    const std::vector<LensResult> batched = run_lens_batch(*model, lens, ids, opts);
    ASSERT_EQ(batched.size(), ids.size());
    double max_diff = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const LensResult one = run_lens(*model, lens, ids[i], opts[i]);
      expect_same(one, batched[i], max_diff);
    }
    // float32 round-off between a (1, T) and a (B, T_max) forward pass; logits are O(1) here.
    // (log-probs are stored as float16, their differences are scaled by 1e-3 above: a float16
    // step near |logp| ~ 8 is 2^-8.)
    std::cout << name << ": batched vs one-by-one max |diff| " << max_diff << std::endl;
    EXPECT_LT(max_diff, 1e-5);
  }
}

// run_lenses takes positions in blocks (LensOptions::block_bytes) to bound memory on long prompts:
// blocks of 3 positions must give what one block of all positions gives, for both lenses of a run,
// up to the float32 round-off of products with fewer rows (same tolerance as above).
TEST(Batch, PositionBlocksEqualOneBlock) {
  auto model = Model::load(test::fixtures_dir() / "tiny-llama");
  LogitLens a(*model), b(*model);
  const int64_t V = model->config().vocab_size;
  std::vector<int64_t> ids;
  for (int t = 0; t < 11; ++t) ids.push_back((t * 37 + 5) % V);
  LensOptions whole;
  whole.top_k = 3;
  whole.targets = {7};
  whole.keep_logprobs = true;
  LensOptions blocked = whole;
  blocked.block_bytes = 3 * V * 4;  // 3 positions per block: blocks of 3, 3, 3, 2
  const auto one = run_lenses(*model, {&a, &b}, ids, whole);
  const auto many = run_lenses(*model, {&a, &b}, ids, blocked);
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(many.size(), 2u);
  double max_diff = 0;
  for (size_t k = 0; k < 2; ++k) {
    expect_same(one[k], many[k], max_diff);
    EXPECT_EQ(many[k].layers.front().positions.size(), ids.size());
    EXPECT_EQ(many[k].logprobs.size(1), static_cast<int64_t>(ids.size()));
    EXPECT_NEAR(one[k].final_max_abs_diff, many[k].final_max_abs_diff, 1e-6);
  }
  std::cout << "position blocks of 3 vs one block: max |diff| " << max_diff << std::endl;
  EXPECT_LT(max_diff, 1e-5);
}

}  // namespace
}  // namespace lens
