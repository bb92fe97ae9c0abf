// Batch runs, shards, resume after kill -9, and regression checks (`lens run --prompts`, `lens merge`,
// `lens diff`, `lens check`), run through the binary as CI would.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "lens/safetensors.h"
#include "cli_util.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using Result = test::CliResult;

Result lens_cli(const std::string& args) { return test::run_cli(args); }

std::string stories() { return (test::shared_dir() / "models" / "stories260K").string(); }
std::string tiny_gpt2() { return (test::fixtures_dir() / "tiny-gpt2").string(); }

// A fresh scratch directory per test, removed at the end.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) {
    dir = fs::temp_directory_path() / ("lens_batch_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

// Structure, ids and strings equal; numbers within tol * max(1, |x|). Batches of different
// composition run different matmul shapes, so float32 results may differ in the last bits
// (measured up to ~8e-6 on logits of magnitude ~10); 1e-5 relative leaves margin.
void expect_close(const json& a, const json& b, double tol, const std::string& where, double& max_diff) {
  if (a.is_number_integer() && b.is_number_integer()) {  // signed vs unsigned after parsing
    EXPECT_EQ(a.get<int64_t>(), b.get<int64_t>()) << where;
    return;
  }
  ASSERT_EQ(a.type(), b.type()) << where;
  if (a.is_object()) {
    ASSERT_EQ(a.size(), b.size()) << where;
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (it.key() == "logprobs") continue;  // sidecar file names depend on batch boundaries
      ASSERT_TRUE(b.contains(it.key())) << where << "." << it.key();
      expect_close(it.value(), b[it.key()], tol, where + "." + it.key(), max_diff);
    }
  } else if (a.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << where;
    for (size_t i = 0; i < a.size(); ++i) expect_close(a[i], b[i], tol, where + "[" + std::to_string(i) + "]", max_diff);
  } else if (a.is_number_float()) {
    const double d = std::abs(a.get<double>() - b.get<double>());
    max_diff = std::max(max_diff, d);
    EXPECT_LE(d, tol * std::max(1.0, std::abs(a.get<double>()))) << where;
  } else {
    EXPECT_EQ(a, b) << where;
  }
}

void expect_same_records(const std::vector<json>& a, const std::vector<json>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) expect_close(a[i], b[i], 1e-5, what + " record " + std::to_string(i), max_diff);
  std::cout << what << ": " << a.size() << " records, max |diff| of numbers " << max_diff << std::endl;
}

// JSONL of token-id prompts for the tokenizer-less fixtures: varied lengths (1..n_ctx).
std::string write_id_prompts(const std::string& path, int n, int vocab, int max_len) {
  std::ofstream f(path);
  for (int i = 0; i < n; ++i) {
    json ids = json::array();
    const int len = 1 + (i * 7) % max_len;
    for (int t = 0; t < len; ++t) ids.push_back((i * 31 + t * 17) % vocab);
    f << json{{"id", "p" + std::to_string(i)}, {"token_ids", ids}}.dump() << "\n";
  }
  return path;
}

// Prompts from the TinyStories corpus (sentences).
std::string write_story_prompts(const std::string& path, int n) {
  std::ifstream in(test::shared_dir() / "corpus" / "tinystories" / "tinystories_train_first2MiB.complete.txt");
  std::ofstream f(path);
  std::string line;
  int written = 0;
  while (written < n && std::getline(in, line)) {
    if (line.size() < 10) continue;
    f << line.substr(0, 200) << "\n";
    ++written;
  }
  return path;
}

TEST(Batch, GoodAndBadPromptsGiveRecordsInOrder) {
  LENS_REQUIRE_SHARED(stories());
  Scratch s("mixed");
  {
    std::ofstream f(s / "p.txt", std::ios::binary);
    f << "Once upon a time\n"               // 0 ok
      << "\n"                                // 1 empty
      << "The cat sat\xff\xfe\n"             // 2 invalid UTF-8
      << std::string(3000, 'a') << " b\n"    // 3 longer than 512 tokens
      << "Lily went to the park\n";          // 4 ok
  }
  Result r = lens_cli("run -m " + stories() + " --prompts " + s / "p.txt" + " -o " + s / "out.jsonl --batch-size 3 -k 2");
  EXPECT_EQ(r.code, 1) << r.err;  // some prompts failed
  EXPECT_NE(r.err.find("3 of 5 prompts failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("5/5"), std::string::npos) << r.err;  // progress
  auto recs = read_jsonl(s / "out.jsonl");
  ASSERT_EQ(recs.size(), 5u);
  for (size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i]["index"], i);
  EXPECT_EQ(recs[1]["error"]["code"], "empty_prompt");
  EXPECT_EQ(recs[2]["error"]["code"], "invalid_utf8");
  EXPECT_EQ(recs[3]["error"]["code"], "too_long");
  EXPECT_NE(recs[3]["error"]["message"].get<std::string>().find("context"), std::string::npos);
  EXPECT_FALSE(recs[4].contains("error"));
  EXPECT_EQ(recs[4]["prompt"], "Lily went to the park");
  EXPECT_TRUE(recs[4]["id"].is_null());

  // The same document as a single run, plus index and id.
  Result one = lens_cli("run -m " + stories() + " --prompt 'Lily went to the park' --json -k 2");
  ASSERT_EQ(one.code, 0) << one.err;
  json single = json::parse(one.out);
  single["index"] = 4;
  single["id"] = nullptr;
  expect_same_records({single}, {recs[4]}, "batch vs single run");

  // stdout when there is no -o; all good prompts: exit 0.
  std::ofstream(s / "good.txt") << "Once upon a time\nThe dog\n";
  r = lens_cli("run -m " + stories() + " --prompts " + s / "good.txt" + " -q --positions last");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
}

TEST(Batch, BatchedEqualsOneByOne) {
  Scratch s("batched");
  const std::string prompts = write_id_prompts(s / "p.jsonl", 23, 97, 64);
  const std::string common = " -m " + tiny_gpt2() + " --prompts " + prompts + " -q --target-id 5 -k 4";
  ASSERT_EQ(lens_cli("run" + common + " --batch-size 1 -o " + s / "b1.jsonl").code, 0);
  ASSERT_EQ(lens_cli("run" + common + " --batch-size 8 -o " + s / "b8.jsonl").code, 0);
  expect_same_records(read_jsonl(s / "b1.jsonl"), read_jsonl(s / "b8.jsonl"), "batch 1 vs 8");
}

TEST(Batch, ResumeAfterKillEqualsUninterruptedRun) {
  LENS_REQUIRE_SHARED(stories());
  Scratch s("resume");
  const std::string prompts = write_story_prompts(s / "p.txt", 200);
  const std::string common = " -m " + stories() + " --prompts " + prompts + " -q --batch-size 4 -t 1";
  ASSERT_EQ(lens_cli("run" + common + " -o " + s / "full.jsonl").code, 0);
  const auto full = read_jsonl(s / "full.jsonl");
  ASSERT_EQ(full.size(), 200u);

  // Launch, wait for some records, kill -9.
  const std::string out = s / "part.jsonl";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string bin = LENS_BINARY;
    execl(bin.c_str(), bin.c_str(), "run", "-m", stories().c_str(), "--prompts", prompts.c_str(), "-q",
          "--batch-size", "4", "-t", "1", "-o", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  size_t lines = 0;
  for (int i = 0; i < 3000 && lines < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::ifstream in(out);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  const size_t killed_at = read_jsonl(out).size();
  ASSERT_GT(killed_at, 0u);
  ASSERT_LT(killed_at, 200u);
  // A torn last line as a crash mid-write would leave it: --resume must cut it off.
  std::ofstream(out, std::ios::app) << R"({"final_check":{"max_abs_diff":0.0,"ok":tr)";

  Result r = lens_cli("run" + common + " --resume -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_records(full, read_jsonl(out), "resumed after kill at " + std::to_string(killed_at));

  // Resuming a finished file runs nothing; a file from other prompts is refused.
  r = lens_cli("run" + common + " --resume -o " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_jsonl(out).size(), 200u);
  std::ofstream(s / "other.txt") << "Something else entirely\n";
  r = lens_cli("run -m " + stories() + " --prompts " + s / "other.txt" + " --resume -o " + out);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("different prompt"), std::string::npos) << r.err;
}

TEST(Batch, ShardsMergedEqualUnsharded) {
  Scratch s("shards");
  const std::string prompts = write_id_prompts(s / "p.jsonl", 17, 97, 64);
  const std::string common = " -m " + tiny_gpt2() + " --prompts " + prompts + " -q --batch-size 3";
  ASSERT_EQ(lens_cli("run" + common + " -o " + s / "all.jsonl").code, 0);
  std::string shards;
  for (int k = 0; k < 3; ++k) {
    const std::string o = s / ("shard" + std::to_string(k) + ".jsonl");
    ASSERT_EQ(lens_cli("run" + common + " --shard " + std::to_string(k) + "/3 -o " + o).code, 0);
    for (const auto& rec : read_jsonl(o)) EXPECT_EQ(rec["index"].get<int>() % 3, k);
    shards += " " + o;
  }
  Result r = lens_cli("merge " + s / "merged.jsonl" + shards);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_records(read_jsonl(s / "all.jsonl"), read_jsonl(s / "merged.jsonl"), "3 shards merged");

  // A missing shard and a duplicated shard are refused, and leave no output.
  r = lens_cli("merge " + s / "bad.jsonl " + s / "shard0.jsonl " + s / "shard2.jsonl --expect 17");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  r = lens_cli("merge " + s / "bad.jsonl" + shards + " " + s / "shard1.jsonl");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("appears in both"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(s / "bad.jsonl"));
  r = lens_cli("run" + common + " --shard 3/3");
  EXPECT_EQ(r.code, 2) << r.err;
}

// Copies the tiny GPT-2 fixture with one weight changed (final norm gain of one channel).
fs::path perturbed_gpt2(const fs::path& dir, float delta) {
  fs::create_directories(dir);
  fs::copy_file(test::fixtures_dir() / "tiny-gpt2" / "config.json", dir / "config.json");
  auto f = SafeTensorsFile::open(test::fixtures_dir() / "tiny-gpt2" / "model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& info : f->tensors()) {
    at::Tensor t = f->tensor(info.name).clone();
    if (info.name == "transformer.ln_f.weight") t[0] += delta;
    tensors.emplace_back(info.name, t);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

TEST(Check, PassesOnIdenticalFailsOnPerturbedModel) {
  Scratch s("check");
  const std::string prompts = write_id_prompts(s / "p.jsonl", 9, 97, 32);
  const std::string base = s / "base.jsonl";
  ASSERT_EQ(lens_cli("run -m " + tiny_gpt2() + " --prompts " + prompts + " -q --store-logprobs -o " + base).code, 0);
  ASSERT_TRUE(fs::exists(base + ".logprobs"));
  ASSERT_EQ(lens_cli("run -m " + tiny_gpt2() + " --prompts " + prompts + " -q --batch-size 4 --store-logprobs -o " +
                     s / "same.jsonl").code, 0);
  Result r = lens_cli("check --baseline " + base + " " + s / "same.jsonl" + " -o " + s / "report.json");
  EXPECT_EQ(r.code, 0) << r.err;
  json rep = test::read_json(s / "report.json");
  EXPECT_TRUE(rep["ok"].get<bool>());
  EXPECT_EQ(rep["kl"], "exact");
  EXPECT_EQ(rep["totals"]["top1_agreement"], 1.0);
  std::cout << "identical runs: exact KL max " << rep["totals"]["kl_max"] << std::endl;

  const fs::path model = perturbed_gpt2(s.dir / "perturbed", 3.0f);
  ASSERT_EQ(lens_cli("run -m " + model.string() + " --prompts " + prompts + " -q --store-logprobs -o " +
                     s / "pert.jsonl").code, 0);
  r = lens_cli("check --baseline " + base + " " + s / "pert.jsonl" + " -o " + s / "report.json");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("drift"), std::string::npos) << r.err;
  rep = test::read_json(s / "report.json");
  EXPECT_FALSE(rep["ok"].get<bool>());
  std::cout << "perturbed model: exact KL max " << rep["totals"]["kl_max"] << ", top-1 agreement "
            << rep["totals"]["top1_agreement"] << std::endl;
  // Without sidecars on one side the top-k estimate is used, and also sees the drift.
  ASSERT_EQ(lens_cli("run -m " + model.string() + " --prompts " + prompts + " -q -o " + s / "pert_topk.jsonl").code, 0);
  r = lens_cli("check --baseline " + base + " " + s / "pert_topk.jsonl" + " -o " + s / "report.json");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::read_json(s / "report.json")["kl"], "top-k estimate");
  // Loose enough tolerances from a file accept it.
  std::ofstream(s / "tol.json") << R"({"min_top1_agreement": 0, "min_topk_overlap": 0, "max_kl": 100, "max_mean_kl": 100})";
  r = lens_cli("check --baseline " + base + " " + s / "pert.jsonl" + " --tolerances " + s / "tol.json");
  EXPECT_EQ(r.code, 0) << r.err;

  // Mismatched inputs: other prompts, a missing file, a bad tolerance key -> 2.
  const std::string other = write_id_prompts(s / "q.jsonl", 9, 89, 20);
  ASSERT_EQ(lens_cli("run -m " + tiny_gpt2() + " --prompts " + other + " -q -o " + s / "other.jsonl").code, 0);
  r = lens_cli("check --baseline " + base + " " + s / "other.jsonl");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("different prompts"), std::string::npos) << r.err;
  EXPECT_EQ(lens_cli("check --baseline " + base + " " + s / "nope.jsonl").code, 2);
  std::ofstream(s / "badtol.json") << R"({"max_kl_typo": 1})";
  EXPECT_EQ(lens_cli("check --baseline " + base + " " + s / "same.jsonl --tolerances " + s / "badtol.json").code, 2);
  // A different model (tiny-llama: other architecture and widths).
  ASSERT_EQ(lens_cli("run -m " + (test::fixtures_dir() / "tiny-llama").string() + " --prompts " + prompts +
                     " -q -o " + s / "llama.jsonl").code, 0);
  r = lens_cli("check --baseline " + base + " " + s / "llama.jsonl");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("different models"), std::string::npos) << r.err;
}

TEST(Check, DiffSingleRunsAndDtypeDrift) {
  LENS_REQUIRE_SHARED(stories());
  Scratch s("dtype");
  const std::string run = "run -m " + stories() + " --prompt 'Once upon a time there was a little girl named Lily' -q";
  ASSERT_EQ(lens_cli(run + " --dtype float32 --store-logprobs -o " + s / "f32.json").code, 0);
  ASSERT_EQ(lens_cli(run + " --dtype float32 --store-logprobs -o " + s / "f32b.json").code, 0);
  ASSERT_TRUE(fs::exists(s / "f32.json.logprobs.safetensors"));
  ASSERT_EQ(lens_cli(run + " --dtype bfloat16 --store-logprobs -o " + s / "bf16.json").code, 0);
  // Tolerance: float32 reruns differ only by the float16 storage of log-probs (KL ~1e-5 at most);
  // bfloat16 weights move the lens distributions by ~1e-3 nats (measured 0.0011 on 6 prompts).
  const std::string tol = " --max-kl 1e-4 --max-mean-kl 1e-4";
  Result r = lens_cli("diff " + s / "f32.json " + s / "f32b.json" + tol);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("layer"), std::string::npos) << r.err;  // per-layer table
  r = lens_cli("diff " + s / "f32.json " + s / "bf16.json -o " + s / "rep.json" + tol);
  EXPECT_EQ(r.code, 1) << r.err;
  json rep = test::read_json(s / "rep.json");
  std::cout << "stories260K float32 vs bfloat16: top-1 agreement " << rep["totals"]["top1_agreement"]
            << ", exact KL mean " << rep["totals"]["kl_mean"] << " max " << rep["totals"]["kl_max"] << std::endl;
  // bfloat16 weights keep ~3 significant digits: KL per cell stays well below 1 nat.
  EXPECT_LT(rep["totals"]["kl_max"].get<double>(), 1.0);
  EXPECT_GT(rep["totals"]["kl_max"].get<double>(), 1e-5);  // above the float16 storage floor (~5e-6)
}

}  // namespace
}  // namespace lens
