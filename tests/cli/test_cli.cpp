// Runs the lens binary as a user would and checks exit codes, stderr messages and the JSON it
// writes (schema fields, consistency with the model), including that failures leave no file.

#include <filesystem>

#include "cli_util.h"
#include "lens/cpu.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

using Result = test::CliResult;

Result run_lens_cli(const std::string& args) { return test::run_cli(args); }

std::string stories() { return (test::shared_dir() / "models" / "stories260K").string(); }
std::string tiny_gpt2() { return (test::fixtures_dir() / "tiny-gpt2").string(); }

TEST(Cli, RunPromptWritesValidJson) {
  LENS_REQUIRE_SHARED(stories());
  Result r = run_lens_cli("run --model " + stories() + " --prompt 'Once upon a time there was a little girl' --json -k 3");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["model"]["architecture"], "llama");
  EXPECT_EQ(j["model"]["n_layer"], 5);
  ASSERT_EQ(j["tokens"].size(), 12u);
  EXPECT_EQ(j["tokens"][0]["id"], 1);
  EXPECT_EQ(j["tokens"][1]["text"], " Once");
  EXPECT_TRUE(j["final_check"]["ok"].get<bool>());
  ASSERT_EQ(j["layers"].size(), 6u);
  EXPECT_EQ(j["layers"][0]["name"], "blocks.0.hook_resid_pre");
  EXPECT_EQ(j["layers"][5]["name"], "blocks.4.hook_resid_post");
  const auto& last = j["layers"][5]["positions"][11];
  EXPECT_EQ(last["pos"], 11);
  EXPECT_EQ(last["top"].size(), 3u);
  EXPECT_EQ(last["top"][0]["id"], 395);
  EXPECT_EQ(last["top"][0]["token"], " named");
  EXPECT_NEAR(last["kl_to_final"].get<double>(), 0.0, 1e-6);
  for (const auto& layer : j["layers"])
    for (const auto& p : layer["positions"]) {
      double sum = 0;
      for (const auto& t : p["top"]) sum += t["prob"].get<double>();
      EXPECT_LE(sum, 1.0 + 1e-5);  // float32 softmax: each prob carries ~1e-7 relative error
      EXPECT_GE(p["entropy"].get<double>(), 0.0);
      EXPECT_GE(p["kl_to_final"].get<double>(), 0.0);
    }
}

TEST(Cli, TimingReportsStagesOnStderrAndInJson) {
  LENS_REQUIRE_SHARED(stories());
  Result r = run_lens_cli("run --model " + stories() + " --prompt 'Once upon a time' --json --timing");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("timing")) << r.out;
  for (const char* stage : {"load", "forward", "lens_prepare", "lens_logits", "lens_reduce", "json"}) {
    ASSERT_TRUE(j["timing"].contains(stage)) << stage;
    EXPECT_GE(j["timing"][stage].get<double>(), 0.0) << stage;
    EXPECT_NE(r.err.find(std::string(" ") + stage + " "), std::string::npos) << r.err;
  }
  EXPECT_NE(r.err.find("timing: load "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" write "), std::string::npos) << r.err;  // after the JSON was made: stderr only
  // Without the flag the document has no timing (outputs of identical runs stay identical).
  Result plain = run_lens_cli("run --model " + stories() + " --prompt 'Once upon a time' --json");
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_FALSE(nlohmann::json::parse(plain.out).contains("timing"));
  EXPECT_EQ(plain.err.find("timing:"), std::string::npos);
}

TEST(Cli, Bfloat16OnACpuWithoutItSaysFloat32IsFaster) {
  const std::string args = "run --model " + tiny_gpt2() + " --token-ids 1,2,3 --json";
  Result bf16 = run_lens_cli(args + " --dtype bfloat16");
  ASSERT_EQ(bf16.code, 0) << bf16.err;
  const bool noted = bf16.err.find("note: this CPU has no bfloat16 arithmetic") != std::string::npos;
  EXPECT_EQ(noted, cpu_lacks_native_bf16()) << bf16.err;  // the note follows the CPU (see test_cpu.cpp)
  Result f32 = run_lens_cli(args + " --dtype float32");
  ASSERT_EQ(f32.code, 0) << f32.err;
  EXPECT_EQ(f32.err.find("bfloat16 arithmetic"), std::string::npos) << f32.err;
  Result quiet = run_lens_cli(args + " --dtype bfloat16 -q");
  EXPECT_EQ(quiet.err.find("note:"), std::string::npos) << quiet.err;
}

TEST(Cli, TableOnTerminal) {
  LENS_REQUIRE_SHARED(stories());
  Result r = run_lens_cli("run --model " + stories() + " --prompt 'Once upon a time' --positions last");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("layer 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("embed"), std::string::npos);
  EXPECT_NE(r.out.find("final-layer check"), std::string::npos);
}

TEST(Cli, TokenIdsLayersPositionsAndOutputFile) {
  const fs::path out = fs::temp_directory_path() / ("lens_cli_" + std::to_string(::getpid()) + ".json");
  Result r = run_lens_cli("run --model " + tiny_gpt2() + " --token-ids 1,2,3,4 --layers 0,-1 --positions last -o " +
                          out.string() + " --target-id 7");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = test::read_json(out);
  fs::remove(out);
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][1]["layer"], 3);
  ASSERT_EQ(j["layers"][1]["positions"].size(), 1u);
  EXPECT_EQ(j["layers"][1]["positions"][0]["pos"], 3);
  EXPECT_EQ(j["layers"][1]["positions"][0]["targets"][0]["id"], 7);
  EXPECT_EQ(j["tokens"][0]["text"], "[1]");  // no tokenizer files in this fixture
}

struct BadCase {
  std::string args;
  int code;
  std::string message;
};

TEST(Cli, BadInputGivesOneClearLineAndNoFile) {
  const fs::path out = fs::temp_directory_path() / ("lens_cli_bad_" + std::to_string(::getpid()) + ".json");
  const std::string o = " -o " + out.string();
  const std::vector<BadCase> cases = {
      {"run --model /nonexistent/dir --token-ids 1", 4, "not found"},
      {"run --model no-such-alias --token-ids 1", 4, "known:"},
      {"run --model " + tiny_gpt2() + " --prompt hello", 4, "no tokenizer files"},
      {"run --model " + tiny_gpt2() + " --token-ids 1,2,x", 2, "not an integer"},
      {"run --model " + tiny_gpt2() + " --token-ids 1,99999", 3, "outside the vocabulary"},
      {"run --model " + tiny_gpt2() + " --token-ids 1 --layers 9", 2, "outside"},
      {"run --model " + tiny_gpt2() + " --token-ids 1 --top-k 0", 2, "top-k"},
      {"run --model " + tiny_gpt2() + " --token-ids 1 --dtype float8", 2, "dtype"},
      {"run --model " + tiny_gpt2() + " --bogus-flag", 2, "bogus"},
      {"run --model " + tiny_gpt2() + " --prompts " + (test::fixtures_dir() / "tiny-gpt2" / "config.json").string() +
           " --attention", 2, "single prompts"},
      {"run --model " + tiny_gpt2() + " --token-ids " + [] {
         std::string s = "1";
         for (int i = 0; i < 64; ++i) s += ",1";
         return s;
       }(), 3, "longer than the model's context"},
  };
  for (const auto& c : cases) {
    Result r = run_lens_cli(c.args + o);
    EXPECT_EQ(r.code, c.code) << c.args << "\n" << r.err;
    // Log lines may precede it; the error itself is the one last line, starting "error: ".
    const auto at = r.err.rfind("error: ");
    ASSERT_NE(at, std::string::npos) << c.args << "\n" << r.err;
    EXPECT_TRUE(at == 0 || r.err[at - 1] == '\n') << r.err;
    EXPECT_EQ(r.err.find('\n', at), r.err.size() - 1) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
}

TEST(Cli, EmptyPromptAndCorruptModel) {
  LENS_REQUIRE_SHARED(stories());
  Result r = run_lens_cli("run --model " + stories() + " --prompt ''");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("empty prompt"), std::string::npos) << r.err;

  // A checkpoint directory whose safetensors file is cut short.
  const fs::path dir = fs::temp_directory_path() / ("lens_cli_corrupt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(test::fixtures_dir() / "tiny-gpt2" / "config.json", dir / "config.json");
  {
    std::ifstream in(test::fixtures_dir() / "tiny-gpt2" / "model.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir / "model.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  r = run_lens_cli("run --model " + dir.string() + " --token-ids 1");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;

  // An architecture lens does not support: the message lists the supported ones.
  std::ofstream(dir / "config.json") << R"({"architectures": ["MambaForCausalLM"]})";
  r = run_lens_cli("run --model " + dir.string() + " --token-ids 1");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("LlamaForCausalLM"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(Cli, ModelsListsAliasesAndLocalModels) {
  Result r = run_lens_cli("models --json --all");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  bool found = false;
  for (const auto& m : j["models"]) found |= m["name"] == "llama2-7b";
  EXPECT_TRUE(found);
  r = run_lens_cli("models");
  EXPECT_EQ(r.code, 0);
}

TEST(Cli, ResolvesAliasThroughModelPathAndHfCache) {
  // An HF cache layout: models--org--name/snapshots/<rev>/ with refs/main.
  const fs::path home = fs::temp_directory_path() / ("lens_cli_hf_" + std::to_string(::getpid()));
  const fs::path snap = home / "hub" / "models--openai-community--gpt2" / "snapshots" / "abc123";
  fs::create_directories(snap);
  fs::create_directories(home / "hub" / "models--openai-community--gpt2" / "refs");
  std::ofstream(home / "hub" / "models--openai-community--gpt2" / "refs" / "main") << "abc123";
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(test::fixtures_dir() / "tiny-gpt2" / f, snap / f);
  Result r = test::run_cli("run --model gpt2 --token-ids 1,2 --json", "HF_HOME=" + home.string() + " HOME=/nonexistent");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["model"]["path"], snap.string());
  // $LENS_MODEL_PATH with <dir>/<alias>
  fs::create_directories(home / "models");
  fs::create_directory_symlink(test::fixtures_dir() / "tiny-llama", home / "models" / "llama2-7b");
  r = test::run_cli("run --model llama2-7b --token-ids 1,2 --json", "LENS_MODEL_PATH=" + (home / "models").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["model"]["architecture"], "llama");
  fs::remove_all(home);
}

}  // namespace
}  // namespace lens
