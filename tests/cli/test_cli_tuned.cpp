// `lens train`, `lens eval` and `lens run --lens` as a user runs them: exit codes, files written (and
// not written on failure), determinism for a seed, and --resume equal to an uninterrupted run.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "lens/tuned_lens.h"
#include "cli_util.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

using Result = test::CliResult;

Result run_lens_cli(const std::string& args) { return test::run_cli(args); }

class CliTuned : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = (test::shared_dir() / "models" / "stories260K").string();
    const fs::path corpus = test::shared_dir() / "corpus" / "tinystories" / "tinystories_train_first2MiB.complete.txt";
    if (!fs::exists(model_) || !fs::exists(corpus)) GTEST_SKIP() << "shared assets missing";
    dir_ = fs::temp_directory_path() / ("lens_cli_tuned_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // The first ~60 KB of stories for training, a later slice held out.
    std::ifstream in(corpus);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t cut = text.find("<|endoftext|>", 60000), cut2 = text.find("<|endoftext|>", 1000000);
    std::ofstream(dir_ / "train.txt") << text.substr(0, cut);
    std::ofstream(dir_ / "eval.txt") << text.substr(cut2 + 13, 30000);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A small, fast training command (4 steps of 1024 tokens).
  std::string train_args(const fs::path& out, const std::string& extra = "", bool quiet = true) const {
    return std::string(quiet ? "train -q" : "train") + " -t 1 --model " + model_ + " --data " + (dir_ / "train.txt").string() + " -o " + out.string() +
           " --seq-len 64 --steps 4 --tokens-per-step 1024 --batch-size 8 " + extra;
  }

  std::string model_;
  fs::path dir_;
};

bool same_params(const fs::path& a, const fs::path& b) {
  auto x = load_tensor_dict(a / "params.pt"), y = load_tensor_dict(b / "params.pt");
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].first != y[i].first || !x[i].second.equal(y[i].second)) return false;
  return true;
}

TEST_F(CliTuned, TrainWritesALensAndHeldOutTable) {
  Result r = run_lens_cli(train_args(dir_ / "lens", "--eval-data " + (dir_ / "eval.txt").string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "lens" / "params.pt"));
  auto cfg = test::read_json(dir_ / "lens" / "config.json");
  EXPECT_EQ(cfg["d_model"], 64);
  EXPECT_EQ(cfg["num_hidden_layers"], 5);
  EXPECT_EQ(cfg["lens_type"], "linear_tuned_lens");
  EXPECT_NE(r.out.find("held-out"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blocks.4.hook_resid_post"), std::string::npos) << r.out;
  auto params = load_tensor_dict(dir_ / "lens" / "params.pt");
  ASSERT_EQ(params.size(), 10u);
  EXPECT_GT(params[0].second.abs().max().item<double>(), 0.0);  // it trained
}

TEST_F(CliTuned, SameSeedSameLensOtherSeedOtherLens) {
  ASSERT_EQ(run_lens_cli(train_args(dir_ / "a", "--seed 1")).code, 0);
  ASSERT_EQ(run_lens_cli(train_args(dir_ / "b", "--seed 1")).code, 0);
  ASSERT_EQ(run_lens_cli(train_args(dir_ / "c", "--seed 2")).code, 0);
  EXPECT_TRUE(same_params(dir_ / "a", dir_ / "b"));
  EXPECT_FALSE(same_params(dir_ / "a", dir_ / "c"));
}

TEST_F(CliTuned, ResumeEqualsUninterruptedRun) {
  ASSERT_EQ(run_lens_cli(train_args(dir_ / "full")).code, 0);
  Result stop = run_lens_cli(train_args(dir_ / "split", "--checkpoint-every 1 --stop-after 2"));
  ASSERT_EQ(stop.code, 0) << stop.err;
  EXPECT_FALSE(fs::exists(dir_ / "split" / "config.json"));  // not a finished lens yet
  EXPECT_TRUE(fs::exists(dir_ / "split" / "checkpoints" / "latest.json"));
  EXPECT_EQ(test::read_json(dir_ / "split" / "checkpoints" / "latest.json")["step"], 2);
  // Starting over into a directory with a checkpoint is refused; so is resuming with other options.
  EXPECT_EQ(run_lens_cli(train_args(dir_ / "split")).code, 2);
  Result other = run_lens_cli(train_args(dir_ / "split", "--resume --lr 0.5"));
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("lr"), std::string::npos) << other.err;
  Result resumed = run_lens_cli(train_args(dir_ / "split", "--resume"));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(same_params(dir_ / "full", dir_ / "split"));
}

// Two worker threads (2 micro-batches of 8 per step here): the same seed gives the same lens, a
// resumed run equals an uninterrupted one, and --timing reports the training stages.
TEST_F(CliTuned, WorkersAreDeterministicAndResume) {
  Result a = run_lens_cli(train_args(dir_ / "w2a", "--workers 2 --timing", /*quiet=*/false));
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.err.find("timing: train_forward "), std::string::npos) << a.err;
  ASSERT_EQ(run_lens_cli(train_args(dir_ / "w2b", "--workers 2")).code, 0);
  EXPECT_TRUE(same_params(dir_ / "w2a", dir_ / "w2b"));
  ASSERT_EQ(run_lens_cli(train_args(dir_ / "w2s", "--workers 2 --checkpoint-every 1 --stop-after 2")).code, 0);
  Result resumed = run_lens_cli(train_args(dir_ / "w2s", "--workers 2 --resume"));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(same_params(dir_ / "w2a", dir_ / "w2s"));
  EXPECT_EQ(run_lens_cli(train_args(dir_ / "bad", "--workers -1")).code, 2);
}

TEST_F(CliTuned, TrainRejectsBadInput) {
  const fs::path out = dir_ / "bad";
  Result r = run_lens_cli("train -q --model " + model_ + " --data " + (dir_ / "missing.txt").string() + " -o " + out.string());
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
  r = run_lens_cli("train -q --model " + model_ + " --data " + (dir_ / "train.txt").string() + " -o " + out.string() +
                   " --seq-len 64 --tokens-per-step 1000");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("multiple"), std::string::npos) << r.err;
  r = run_lens_cli("train -q --model " + model_ + " --data " + (dir_ / "train.txt").string() + " -o " + out.string() +
                   " --seq-len 4096");
  EXPECT_EQ(r.code, 2);
  r = run_lens_cli(train_args(out, "--loss mse"));
  EXPECT_EQ(r.code, 2);
  r = run_lens_cli(train_args(out, "--resume"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no checkpoint"), std::string::npos) << r.err;
  std::ofstream(dir_ / "bad.jsonl") << "{\"text\": \"Once upon a time\"}\n{\"body\": \"no text field\"}\n";
  r = run_lens_cli("train -q --model " + model_ + " --data " + (dir_ / "bad.jsonl").string() + " -o " + out.string());
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("bad.jsonl:2"), std::string::npos) << r.err;
  std::ofstream(dir_ / "tiny.txt") << "Hi.";
  r = run_lens_cli("train -q --model " + model_ + " --data " + (dir_ / "tiny.txt").string() + " -o " + out.string());
  EXPECT_EQ(r.code, 3);
  EXPECT_FALSE(fs::exists(out)) << "a failed run left " << out;
}

TEST_F(CliTuned, EvalAndRunWithATunedLens) {
  ASSERT_EQ(run_lens_cli(train_args(dir_ / "lens")).code, 0);
  const fs::path json = dir_ / "eval.json";
  Result r = run_lens_cli("eval -q -t 1 --model " + model_ + " --lens " + (dir_ / "lens").string() + " --data " +
                          (dir_ / "eval.txt").string() + " --seq-len 64 -o " + json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tuned CE"), std::string::npos) << r.out;
  auto j = test::read_json(json);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["kind"], "lens-eval");
  ASSERT_EQ(j["lenses"]["logit"].size(), 6u);
  ASSERT_EQ(j["lenses"]["tuned"].size(), 6u);
  for (int l = 0; l < 6; ++l) {
    const auto& x = j["lenses"]["logit"][l];
    EXPECT_NEAR(x["ce_bpb"].get<double>(), x["ce"].get<double>() * j["data"]["nats_to_bpb"].get<double>(), 1e-9);
  }
  EXPECT_LT(j["lenses"]["tuned"][0]["kl"].get<double>(), j["lenses"]["logit"][0]["kl"].get<double>());
  EXPECT_NEAR(j["lenses"]["tuned"][5]["kl"].get<double>(), 0.0, 1e-6);
  EXPECT_GT(j["baseline"]["ce"].get<double>(), 0.0);

  // Without --lens: the logit lens only.
  r = run_lens_cli("eval -q --json --model " + model_ + " --data " + (dir_ / "eval.txt").string() + " --seq-len 64 --max-sequences 4");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j2 = nlohmann::json::parse(r.out);
  EXPECT_EQ(j2["data"]["sequences"], 4);
  EXPECT_FALSE(j2["lenses"].contains("tuned"));

  // A lens for another model, and a directory that is not a lens: exit 4, no output file.
  const fs::path other = test::fixtures_dir() / "tuned-lens-py";  // tiny-llama: d_model 32, 3 layers
  r = run_lens_cli("eval -q --model " + model_ + " --lens " + other.string() + " --data " + (dir_ / "eval.txt").string() +
                   " -o " + (dir_ / "no.json").string());
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("d_model 32"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "no.json"));
  r = run_lens_cli("eval -q --model " + model_ + " --lens " + dir_.string() + " --data " + (dir_ / "eval.txt").string());
  EXPECT_EQ(r.code, 4);

  // lens run with both lenses: JSON "lenses" holds each; the tuned lens's last layer is the model's.
  r = run_lens_cli("run -q --model " + model_ + " --prompt 'Once upon a time' --json --lens both:" + (dir_ / "lens").string());
  ASSERT_EQ(r.code, 0) << r.err;
  auto run = nlohmann::json::parse(r.out);
  ASSERT_TRUE(run.contains("lenses")) << r.out.substr(0, 500);
  EXPECT_TRUE(run["lenses"].contains("logit"));
  EXPECT_TRUE(run["lenses"].contains("tuned"));
  r = run_lens_cli("run -q --model " + model_ + " --prompt 'Once' --lens tuned:" + (dir_ / "lens").string());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(run_lens_cli("run -q --model " + model_ + " --prompt 'Once' --lens tuned:" + (dir_ / "nope").string()).code, 4);
  EXPECT_EQ(run_lens_cli("run -q --model " + model_ + " --prompt 'Once' --lens both").code, 2);
  EXPECT_EQ(run_lens_cli("run -q --model " + model_ + " --prompt 'Once' --lens magic:x").code, 2);
}

}  // namespace
}  // namespace lens
