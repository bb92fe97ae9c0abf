// Parity with transformers 5.23 on checkpoints its own save_pretrained wrote (config.json in the v5
// layout: rope_parameters, layer_types, dtype), for every supported family and every RoPE type,
// built by tests/parity/make_fixtures_v5.py with a float64 reference (transformers' float32
// islands in norms, softmax and RoPE promoted to float64 there). lens runs in float32 and must
// match at every hook point (resid_pre / attn_out / resid_mid / mlp_out / resid_post, the attention
// pattern, ln_final, logits) and in the logit lens (probability of every token, entropy, KL to the
// final layer at every layer and position), and so must the same model with the 4.x config layout
// (config.v4.json) where the family had one.
// Tolerance 1e-4 (absolute): float32 round-off over 3-4 layers with activations up to ~30 stays
// below ~1e-5 against a float64 reference; each fixture's ablations (a feature removed) move the
// logits by 0.3 or more, so an unimplemented or wrongly implemented feature fails by far.
#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include "lens/lens.h"
#include "lens/model.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;
constexpr double kTol = 1e-4;

std::vector<std::string> v5_fixtures() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(test::fixtures_dir() / "v5"))
    if (fs::exists(e.path() / "reference.json")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class V5Parity : public ::testing::TestWithParam<std::string> {};

// Runs the model with every reference hook kept; returns the worst max |diff| (and checks each).
double check_hooks(const fs::path& dir, const nlohmann::json& ref, const std::string& label) {
  auto model = Model::load(dir, {"float32", "cpu"});
  EXPECT_TRUE(model->config().ignored_keys.empty())
      << label << ": a config written by transformers must have no unknown keys, got " << model->config().ignored_keys[0];
  std::vector<int64_t> ids = ref["input_ids"].get<std::vector<int64_t>>();
  c10::InferenceMode guard;
  Hooks hooks;
  for (auto it = ref["hooks"].begin(); it != ref["hooks"].end(); ++it) hooks.keep(it.key());
  at::Tensor logits = model->forward(at::tensor(ids, at::kLong).unsqueeze(0), &hooks)[0];
  double worst = 0;
  auto check = [&](const std::string& what, const at::Tensor& got, const nlohmann::json& want) {
    at::Tensor w = test::json_tensor(want);
    ASSERT_EQ(got.sizes(), w.sizes()) << label << " " << what;
    const double d = test::max_abs_diff(got, w);
    worst = std::max(worst, d);
    if (std::getenv("LENS_PARITY_VERBOSE") != nullptr) std::printf("    %-32s %.3g\n", what.c_str(), d);
    EXPECT_LE(d, kTol) << label << " " << what;
  };
  for (auto it = ref["hooks"].begin(); it != ref["hooks"].end(); ++it) {
    EXPECT_TRUE((hooks.cache().count(it.key()) > 0)) << label << ": lens emitted no " << it.key();
    if ((hooks.cache().count(it.key()) > 0)) check(it.key(), hooks.get(it.key())[0], it.value());
  }
  check("logits", logits, ref["logits"]);
  std::printf("%-28s %-10s %3zu hook points + logits: worst max |diff| = %.3g (tolerance %.0e)\n", ref["name"].get<std::string>().c_str(),
              label.c_str(), ref["hooks"].size(), worst, kTol);
  return worst;
}

TEST_P(V5Parity, EveryHookPointMatchesTransformers5) {
  const auto dir = test::fixtures_dir() / "v5" / GetParam();
  const auto ref = test::read_json(dir / "reference.json");
  check_hooks(dir, ref, "v5 config");
}

// With no hooks the attention takes its fast path (fused_causal_attention for small heads) unless a
// layer soft-caps its scores (Gemma 2), which the fused kernel cannot do: either way the logits
// must match the reference, as the hooked run (materialised scores) above does.
TEST_P(V5Parity, LogitsMatchWithoutHooks) {
  const auto dir = test::fixtures_dir() / "v5" / GetParam();
  const auto ref = test::read_json(dir / "reference.json");
  auto model = Model::load(dir, {"float32", "cpu"});
  c10::InferenceMode guard;
  const std::vector<int64_t> ids = ref["input_ids"].get<std::vector<int64_t>>();
  const at::Tensor logits = model->forward(at::tensor(ids, at::kLong).unsqueeze(0), nullptr)[0];
  const at::Tensor want = test::json_tensor(ref["logits"]);
  ASSERT_EQ(logits.sizes(), want.sizes());
  const double d = test::max_abs_diff(logits, want);
  std::printf("%-28s no hooks: logits max |diff| = %.3g (tolerance %.0e)\n", GetParam().c_str(), d, kTol);
  EXPECT_LE(d, kTol);
}

TEST_P(V5Parity, TheSameModelWithThe4xConfigLayoutMatches) {
  const auto dir = test::fixtures_dir() / "v5" / GetParam();
  if (!fs::exists(dir / "config.v4.json")) GTEST_SKIP() << "family had no 4.x layout";
  const auto ref = test::read_json(dir / "reference.json");
  ASSERT_TRUE(ref.value("v4_layout_checked", false));
  const fs::path tmp = fs::temp_directory_path() / ("lens_v4_" + GetParam() + "_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::copy_file(dir / "config.v4.json", tmp / "config.json");
  fs::create_symlink(dir / "model.safetensors", tmp / "model.safetensors");
  check_hooks(tmp, ref, "v4 config");
  fs::remove_all(tmp);
}

TEST_P(V5Parity, LogitLensMatchesAtEveryLayerAndPosition) {
  const auto dir = test::fixtures_dir() / "v5" / GetParam();
  const auto ref = test::read_json(dir / "reference.json");
  auto model = Model::load(dir, {"float32", "cpu"});
  LogitLens lens(*model);
  LensOptions opts;
  opts.top_k = model->config().vocab_size;  // every token's probability
  LensResult r = run_lens(*model, lens, ref["input_ids"].get<std::vector<int64_t>>(), opts);
  EXPECT_TRUE(r.final_ok) << r.final_max_abs_diff;
  const at::Tensor probs = test::json_tensor(ref["lens"]["probs"]);  // (L+1, T, V)
  const at::Tensor entropy = test::json_tensor(ref["lens"]["entropy"]);
  const at::Tensor kl = test::json_tensor(ref["lens"]["kl_to_final"]);
  ASSERT_EQ(static_cast<int64_t>(r.layers.size()), probs.size(0));
  double worst_p = 0, worst_h = 0, worst_kl = 0;
  for (size_t l = 0; l < r.layers.size(); ++l) {
    for (const auto& p : r.layers[l].positions) {
      ASSERT_EQ(static_cast<int64_t>(p.top.size()), probs.size(2));
      for (const auto& t : p.top)
        worst_p = std::max(worst_p, std::abs(t.prob - probs[l][p.pos][t.id].item<double>()));
      worst_h = std::max(worst_h, std::abs(p.entropy - entropy[l][p.pos].item<double>()));
      worst_kl = std::max(worst_kl, std::abs(p.kl_to_final - kl[l][p.pos].item<double>()));
    }
  }
  std::printf("%-28s logit lens over %zu layers: max |diff| prob %.3g, entropy %.3g, KL %.3g (tolerance %.0e)\n",
              GetParam().c_str(), r.layers.size(), worst_p, worst_h, worst_kl, kTol);
  EXPECT_LE(worst_p, kTol);
  EXPECT_LE(worst_h, kTol);
  EXPECT_LE(worst_kl, kTol);
  // The last lens layer is the model's own head (Granite's logits_scaling included): KL ~ 0.
  for (const auto& p : r.layers.back().positions) EXPECT_LE(p.kl_to_final, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, V5Parity, ::testing::ValuesIn(v5_fixtures()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace lens
