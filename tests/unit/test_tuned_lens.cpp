// Tuned lens on the tiny fixtures: an untrained lens is the logit lens exactly; translator
// gradients agree with finite differences (double precision); files round-trip, files written by
// Python's torch.save load with the package's weight convention, and mismatched lenses are refused.
#include <unistd.h>

#include <c10/core/InferenceMode.h>

#include <filesystem>
#include <fstream>

#include "lens/error.h"
#include "lens/lens.h"
#include "lens/model.h"
#include "lens/train.h"
#include "lens/tuned_lens.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<Model> tiny(const std::string& name) { return Model::load(test::fixtures_dir() / name); }

class TunedLensFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lens_tuned_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

void randomize(TunedLens& lens, int seed) {
  at::manual_seed(seed);
  for (int64_t i = 0; i < lens.n_translators(); ++i) {
    lens.translator(i).weight.copy_(at::randn_like(lens.translator(i).weight) * 0.05);
    lens.translator(i).bias.copy_(at::randn_like(lens.translator(i).bias) * 0.1);
  }
}

TEST(TunedLens, ZeroInitIsExactlyTheLogitLens) {
  for (const char* name : {"tiny-llama", "tiny-gpt2"}) {
    auto model = tiny(name);
    const auto& cfg = model->config();
    LogitLens logit(*model);
    TunedLens tuned(*model, name);
    ASSERT_EQ(tuned.n_translators(), cfg.n_layer);
    c10::InferenceMode guard;
    // Real residuals at every lens layer, and large random ones.
    std::vector<int64_t> ids = {1, 5, 9, 17, 33, 2, 64, 80};
    for (int64_t l = 0; l <= cfg.n_layer; ++l) {
      Hooks hooks;
      hooks.keep(lens_layer_hook(l));
      model->forward(at::tensor(ids, at::kLong).unsqueeze(0), &hooks);
      at::Tensor h = hooks.get(lens_layer_hook(l));
      const double diff = test::max_abs_diff(tuned.logits(l, h), logit.logits(l, h));
      at::Tensor r = at::randn({3, 5, cfg.d_model}) * 10;
      const double diff_r = test::max_abs_diff(tuned.logits(l, r), logit.logits(l, r));
      std::cout << name << " layer " << l << ": max |tuned - logit| = " << diff << " (random resid " << diff_r << ")\n";
      EXPECT_EQ(diff, 0.0);
      EXPECT_EQ(diff_r, 0.0);
    }
    // And through the whole lens run: identical statistics.
    LensOptions opts;
    LensResult a = run_lens(*model, logit, ids, opts), b = run_lens(*model, tuned, ids, opts);
    ASSERT_EQ(a.layers.size(), b.layers.size());
    for (size_t l = 0; l < a.layers.size(); ++l)
      for (size_t p = 0; p < a.layers[l].positions.size(); ++p) {
        EXPECT_EQ(a.layers[l].positions[p].entropy, b.layers[l].positions[p].entropy);
        EXPECT_EQ(a.layers[l].positions[p].kl_to_final, b.layers[l].positions[p].kl_to_final);
        EXPECT_EQ(a.layers[l].positions[p].top[0].id, b.layers[l].positions[p].top[0].id);
      }
  }
}

TEST(TunedLens, LastLayerHasNoTranslator) {
  auto model = tiny("tiny-llama");
  TunedLens lens(*model, "x");
  randomize(lens, 1);
  at::Tensor h = at::randn({2, model->config().d_model});
  EXPECT_TRUE(lens.translate(model->config().n_layer, h).equal(h));
  EXPECT_FALSE(lens.translate(0, h).equal(h));
}

// Translator + readout + loss in double: autograd gradients of W and b vs central differences.
// The readout stands in for final_norm + unembed (RMS norm with a gain, then a linear map) because
// the model's own unembed computes in float32. Tolerance: central differences with eps = 1e-6 have
// truncation error ~eps^2 * |f'''| (~1e-12) and rounding error ~1e-16 / eps (~1e-10), so agreement
// to 1e-7 (absolute, on gradients of order 1e-2..1) is a strict check of the analytic gradient.
TEST(TunedLens, TranslatorGradientsMatchFiniteDifferences) {
  const int64_t B = 2, T = 3, d = 6, V = 11;
  at::manual_seed(7);
  auto dbl = at::TensorOptions().dtype(at::kDouble);
  at::Tensor gain = at::rand({d}, dbl) + 0.5;
  at::Tensor U = at::randn({V, d}, dbl);
  auto readout = [&](const at::Tensor& x) {
    at::Tensor n = x * at::rsqrt(x.pow(2).mean(-1, true) + 1e-5) * gain;
    return at::linear(n, U);
  };
  at::Tensor h = at::randn({B, T, d}, dbl);
  at::Tensor target_kl = at::log_softmax(at::randn({B, T, V}, dbl) * 2, -1);
  at::Tensor target_ce = at::randint(0, V, {B, T}, at::TensorOptions().dtype(at::kLong));
  for (LensLoss kind : {LensLoss::kKL, LensLoss::kCE}) {
    const at::Tensor& target = kind == LensLoss::kKL ? target_kl : target_ce;
    at::Tensor W = (at::randn({d, d}, dbl) * 0.3).requires_grad_(true);
    at::Tensor b = (at::randn({d}, dbl) * 0.3).requires_grad_(true);
    auto f = [&]() { return lens_loss(readout(translate_affine(h, W, b)), target, kind); };
    f().backward();
    double worst = 0, gmax = 0;
    const double eps = 1e-6;
    for (at::Tensor* p : {&W, &b}) {
      at::Tensor g = p->grad().clone();
      at::NoGradGuard no_grad;
      at::Tensor flat = p->view({-1});
      for (int64_t i = 0; i < flat.numel(); ++i) {
        const double v = flat[i].item<double>();
        flat[i] = v + eps;
        const double up = f().item<double>();
        flat[i] = v - eps;
        const double down = f().item<double>();
        flat[i] = v;
        const double fd = (up - down) / (2 * eps);
        worst = std::max(worst, std::abs(fd - g.view({-1})[i].item<double>()));
        gmax = std::max(gmax, std::abs(fd));
      }
    }
    std::cout << (kind == LensLoss::kKL ? "KL" : "CE") << ": max |autograd - finite difference| = " << worst
              << " (max |grad| " << gmax << ")\n";
    EXPECT_LT(worst, 1e-7);
    EXPECT_GT(gmax, 1e-3);  // the check is not vacuous
  }
}

TEST(TunedLens, KlLossIsZeroForTheTargetAndMatchesDefinition) {
  at::manual_seed(3);
  at::Tensor logits = at::randn({2, 4, 9}, at::kDouble);
  at::Tensor target = at::log_softmax(logits, -1);
  EXPECT_NEAR(lens_loss(logits, target, LensLoss::kKL).item<double>(), 0.0, 1e-15);
  at::Tensor other = at::randn({2, 4, 9}, at::kDouble);
  at::Tensor q = at::log_softmax(other, -1);
  const double want = (target.exp() * (target - q)).sum(-1).mean().item<double>();
  EXPECT_NEAR(lens_loss(other, target, LensLoss::kKL).item<double>(), want, 1e-14);
}

// The trainer's direct loss gradient equals autograd's through lens_loss (both in double; they
// differ only by rounding, so 1e-12 relative to gradients of order 1/n).
TEST(TunedLens, DirectLossGradientMatchesAutograd) {
  at::manual_seed(5);
  at::Tensor logits = at::randn({2, 5, 13}, at::kDouble) * 3;
  at::Tensor target_kl = at::log_softmax(at::randn({2, 5, 13}, at::kDouble), -1);
  at::Tensor target_ce = at::randint(0, 13, {2, 5}, at::TensorOptions().dtype(at::kLong));
  for (LensLoss kind : {LensLoss::kKL, LensLoss::kCE}) {
    const at::Tensor& target = kind == LensLoss::kKL ? target_kl : target_ce;
    at::Tensor z = logits.clone().requires_grad_(true);
    at::Tensor loss = lens_loss(z, target, kind);
    loss.backward();
    auto direct = lens_loss_grad(logits, target, kind);
    const double diff = test::max_abs_diff(direct.second, z.grad());
    std::cout << (kind == LensLoss::kKL ? "KL" : "CE") << ": loss " << direct.first << " vs " << loss.item<double>()
              << ", max grad diff " << diff << "\n";
    EXPECT_NEAR(direct.first, loss.item<double>(), 1e-12);
    EXPECT_LT(diff, 1e-12);
    EXPECT_GT(z.grad().abs().max().item<double>(), 1e-3);
  }
}

// The trainer evaluates several layers in one pass (lens_loss_grad_layers, with the micro-batch
// weight folded in): each layer's loss and scaled gradient equal the one-layer function's.
TEST(TunedLens, LayerGroupedLossGradientMatchesPerLayer) {
  at::manual_seed(6);
  at::Tensor logits = at::randn({3, 2, 5, 13}, at::kDouble) * 3;  // (G, B, T, V)
  at::Tensor target_kl = at::log_softmax(at::randn({2, 5, 13}, at::kDouble), -1);
  at::Tensor target_ce = at::randint(0, 13, {2, 5}, at::TensorOptions().dtype(at::kLong));
  for (LensLoss kind : {LensLoss::kKL, LensLoss::kCE}) {
    const at::Tensor& target = kind == LensLoss::kKL ? target_kl : target_ce;
    auto many = lens_loss_grad_layers(logits, target, kind, 0.25);
    ASSERT_EQ(many.first.size(), 3u);
    double diff = 0;
    for (int64_t g = 0; g < 3; ++g) {
      auto one = lens_loss_grad(logits[g], target, kind);
      EXPECT_NEAR(many.first[static_cast<size_t>(g)], one.first, 1e-12);
      diff = std::max(diff, test::max_abs_diff(many.second[g], one.second * 0.25));
    }
    std::cout << (kind == LensLoss::kKL ? "KL" : "CE") << ": max grad diff " << diff << "\n";
    EXPECT_LT(diff, 1e-14);
  }
}

// float32 CPU logits take a fused per-row loop (row_kl_grad); it must agree with the tensor-op
// path run in double on the same values. Tolerances: loss 2e-6 relative (float exp and block
// sums, ~1e-7 per term), gradient 1e-6 of its largest entry.
TEST(TunedLens, FusedFloatKlGradientMatchesDouble) {
  at::manual_seed(7);
  at::Tensor logits = at::randn({3, 2, 7, 1500}) * 3;  // (G, B, T, V) float32
  at::Tensor target = at::log_softmax(at::randn({2, 7, 1500}) * 4, -1);
  auto fused = lens_loss_grad_layers(logits, target, LensLoss::kKL, 0.5);
  auto ref = lens_loss_grad_layers(logits.to(at::kDouble), target.to(at::kDouble), LensLoss::kKL, 0.5);
  ASSERT_EQ(fused.first.size(), 3u);
  EXPECT_EQ(fused.second.scalar_type(), at::kFloat);
  double worst_loss = 0;
  for (size_t g = 0; g < 3; ++g) {
    worst_loss = std::max(worst_loss, std::abs(fused.first[g] - ref.first[g]) / ref.first[g]);
    EXPECT_NEAR(fused.first[g], ref.first[g], 2e-6 * ref.first[g]);
  }
  const double gmax = ref.second.abs().max().item<double>();
  const double diff = test::max_abs_diff(fused.second.to(at::kDouble), ref.second);
  std::cout << "fused float32 KL: loss rel diff " << worst_loss << ", grad max diff " << diff << " (max |grad| " << gmax
            << ")\n";
  EXPECT_LT(diff, 1e-6 * gmax);
  EXPECT_GT(gmax, 1e-4);
  // overwrite_logits: the same loss and gradient, written into the logits' own storage.
  at::Tensor scratch = logits.clone();
  auto in_place = lens_loss_grad_layers(scratch, target, LensLoss::kKL, 0.5, /*overwrite_logits=*/true);
  EXPECT_EQ(in_place.second.data_ptr(), scratch.data_ptr());
  EXPECT_TRUE(in_place.second.equal(fused.second));
  for (size_t g = 0; g < 3; ++g) EXPECT_EQ(in_place.first[g], fused.first[g]);
}

TEST_F(TunedLensFiles, SaveLoadRoundTrip) {
  auto model = tiny("tiny-llama");
  TunedLens lens(*model, "tiny-llama");
  randomize(lens, 2);
  lens.save(dir_);
  ASSERT_TRUE(fs::exists(dir_ / "config.json"));
  ASSERT_TRUE(fs::exists(dir_ / "params.pt"));
  for (const auto& e : fs::directory_iterator(dir_))  // no temp files left behind
    EXPECT_TRUE(e.path().filename() == "config.json" || e.path().filename() == "params.pt") << e.path();
  auto j = test::read_json(dir_ / "config.json");
  EXPECT_EQ(j["d_model"], 32);
  EXPECT_EQ(j["num_hidden_layers"], 3);
  EXPECT_EQ(j["bias"], true);
  EXPECT_EQ(j["lens_type"], "linear_tuned_lens");
  EXPECT_EQ(j["base_model_name_or_path"], "tiny-llama");
  EXPECT_TRUE(j.contains("unembed_hash") && j.contains("base_model_revision"));

  auto back = TunedLens::load(*model, dir_);
  ASSERT_EQ(back->n_translators(), lens.n_translators());
  for (int64_t i = 0; i < lens.n_translators(); ++i) {
    EXPECT_TRUE(back->translator(i).weight.equal(lens.translator(i).weight)) << i;
    EXPECT_TRUE(back->translator(i).bias.equal(lens.translator(i).bias)) << i;
  }
  auto keys = load_tensor_dict(dir_ / "params.pt");
  ASSERT_EQ(keys.size(), 6u);
  EXPECT_EQ(keys[0].first, "0.weight");
  EXPECT_EQ(keys[1].first, "0.bias");
  EXPECT_EQ(keys[5].first, "2.bias");
}

// tests/fixtures/tuned-lens-py was written by Python (torch.save of nn.ModuleList.state_dict(), as
// the tuned-lens package saves); reference.json holds h + Linear_i(h) computed by nn.Linear. Float32
// matmul of 32-vectors: agreement to 1e-5 (values are O(1)).
TEST(TunedLens, LoadsPythonTorchSaveWithLinearConvention) {
  auto model = tiny("tiny-llama");
  const fs::path dir = test::fixtures_dir() / "tuned-lens-py";
  auto lens = TunedLens::load(*model, dir);
  EXPECT_EQ(lens->config().base_model_name_or_path, "tests/fixtures/tiny-llama");
  EXPECT_FALSE(lens->config().unembed_hash.has_value());
  auto ref = test::read_json(dir / "reference.json");
  at::Tensor h = test::json_tensor(ref["h"]).to(at::kFloat);
  for (int64_t i = 0; i < lens->n_translators(); ++i) {
    at::Tensor want = test::json_tensor(ref["translated"][static_cast<size_t>(i)]);
    const double diff = test::max_abs_diff(lens->translate(i, h), want);
    const double transposed = test::max_abs_diff(translate_affine(h, lens->translator(i).weight.t(), lens->translator(i).bias), want);
    std::cout << "translator " << i << ": max diff " << diff << " (with W^T instead: " << transposed << ")\n";
    EXPECT_LT(diff, 1e-5);
    EXPECT_GT(transposed, 1e-2);  // the fixture tells W from W^T
  }
}

TEST_F(TunedLensFiles, RefusesMismatchedModel) {
  auto model = tiny("tiny-llama");
  TunedLens lens(*model, "tiny-llama");
  lens.save(dir_);
  auto patch = [&](const std::string& key, int64_t value) {
    auto j = test::read_json(dir_ / "config.json");
    j[key] = value;
    std::ofstream(dir_ / "config.json") << j.dump();
  };
  auto expect_model_error = [&](const std::string& needle) {
    try {
      TunedLens::load(*model, dir_);
      ADD_FAILURE() << "expected ModelError containing '" << needle << "'";
    } catch (const ModelError& e) {
      std::cout << "refused: " << e.what() << "\n";
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  patch("d_model", 64);
  expect_model_error("d_model 64");
  patch("d_model", 32);
  patch("num_hidden_layers", 4);
  expect_model_error("4 layers");
  patch("num_hidden_layers", 3);
  EXPECT_NO_THROW(TunedLens::load(*model, dir_));

  // A params.pt whose shapes do not match its config.
  save_tensor_dict(dir_ / "params.pt", {"0.weight", "0.bias"}, {at::zeros({16, 16}), at::zeros({16})});
  expect_model_error("shape");
  // Missing translators.
  save_tensor_dict(dir_ / "params.pt", {"0.weight", "0.bias"}, {at::zeros({32, 32}), at::zeros({32})});
  expect_model_error("missing tensor '1.weight'");
  // Not a torch file at all.
  std::ofstream(dir_ / "params.pt") << "not a zip";
  expect_model_error("params.pt");
  fs::remove(dir_ / "params.pt");
  expect_model_error("params.pt");
  fs::remove(dir_ / "config.json");
  expect_model_error("config.json");
  EXPECT_THROW(TunedLens::load(*model, dir_ / "nope"), ModelError);
}

// Micro-batches spread over worker threads: each worker's gradients are summed after the step, so
// the trained lens equals the single-threaded one up to float rounding of that sum (tolerance
// 1e-5 of the largest parameter after 4 steps; measured ~1e-7), and two runs with the same worker
// count are bit-identical.
TEST(TunedLens, WorkersGiveTheSameLensAsOneThread) {
  auto model = tiny("tiny-llama");
  at::manual_seed(9);
  at::Tensor seqs = at::randint(0, model->config().vocab_size, {24, 16}, at::kLong);
  auto train = [&](int64_t workers, const std::string& tag) {
    TrainOptions o;
    o.steps = 4;
    o.tokens_per_step = 8 * 16;  // 8 sequences: 4 micro-batches of 2
    o.batch_size = 2;
    o.workers = workers;
    o.output = std::filesystem::temp_directory_path() / ("lens_workers_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(o.output);
    auto lens = std::make_unique<TunedLens>(*model, "tiny-llama");
    TrainResult r = train_tuned_lens(*model, *lens, seqs, o);
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.tokens, 4 * 8 * 16);
    std::filesystem::remove_all(o.output);
    return lens;
  };
  auto one = train(1, "1");
  auto two = train(2, "2a");
  auto again = train(2, "2b");
  auto three = train(3, "3");
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < one->n_translators(); ++i) {
    for (const auto& [a, b] : {std::pair{one->translator(i).weight, two->translator(i).weight},
                               std::pair{one->translator(i).bias, two->translator(i).bias},
                               std::pair{one->translator(i).weight, three->translator(i).weight}}) {
      diff = std::max(diff, (a - b).abs().max().item<double>());
      scale = std::max(scale, a.abs().max().item<double>());
    }
    EXPECT_TRUE(two->translator(i).weight.equal(again->translator(i).weight));
    EXPECT_TRUE(two->translator(i).bias.equal(again->translator(i).bias));
  }
  std::cout << "workers 2 and 3 vs 1: max |param diff| " << diff << " (largest |param| " << scale << ")\n";
  EXPECT_GT(scale, 1e-4);  // training moved the translators
  EXPECT_LT(diff, 1e-5 * scale);
}

TEST(TrainSchedule, LinearDecayAndWarmup) {
  EXPECT_DOUBLE_EQ(lr_multiplier(0, 250, 0), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(249, 250, 0), 1.0 / 250);
  EXPECT_DOUBLE_EQ(lr_multiplier(250, 250, 0), 0.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(0, 10, 2), 0.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(1, 10, 2), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier(2, 10, 2), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(6, 10, 2), 0.5);
}

TEST(TrainSchedule, PermutationsAreSeededPermutations) {
  auto a = epoch_permutation(100, 42, 0), b = epoch_permutation(100, 42, 0);
  auto c = epoch_permutation(100, 43, 0), d = epoch_permutation(100, 42, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
}

}  // namespace
}  // namespace lens
