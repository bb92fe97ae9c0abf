// The config-key rule from the command line: a key lens does not know is a warning (also under -q)
// and config.ignored_keys in the JSON; --strict refuses it with exit 4; a key lens cannot honour is
// refused by name with exit 4 even without --strict; `lens models --all` lists every family with
// the transformers release its parity was checked against.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "cli_util.h"

#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

// A copy of a v5 fixture with config.json edited by `edit`.
fs::path edited_fixture(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  const fs::path src = test::fixtures_dir() / "v5" / name;
  const fs::path dir = test::temp_dir("cfgkeys");
  nlohmann::json cfg = test::read_json(src / "config.json");
  edit(cfg);
  std::ofstream(dir / "config.json") << cfg.dump(2);
  fs::create_symlink(src / "model.safetensors", dir / "model.safetensors");
  return dir;
}

TEST(CliConfigKeys, UnknownKeyWarnsAndIsRecordedStrictRefuses) {
  const fs::path dir = edited_fixture("v5-llama", [](nlohmann::json& c) {
    c["attn_logit_softcapping"] = 30.0;  // Gemma 2's soft-capping: LLaMA does not have it
  });
  const std::string run = "run --model " + dir.string() + " --token-ids 1,5,7,9 --json -q";
  test::CliResult r = test::run_cli(run);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning:"), std::string::npos) << "the warning shows even under -q: " << r.err;
  EXPECT_NE(r.err.find("attn_logit_softcapping"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["config"]["ignored_keys"], nlohmann::json::array({"attn_logit_softcapping"}));

  test::CliResult strict = test::run_cli(run + " --strict");
  EXPECT_EQ(strict.code, 4);
  EXPECT_NE(strict.err.find("--strict"), std::string::npos) << strict.err;
  EXPECT_NE(strict.err.find("attn_logit_softcapping"), std::string::npos) << strict.err;
  EXPECT_TRUE(strict.out.empty());
  fs::remove_all(dir);
}

TEST(CliConfigKeys, ATransformersWrittenConfigHasNoIgnoredKeysUnderStrict) {
  const fs::path dir = test::fixtures_dir() / "v5" / "v5-glm4";
  test::CliResult r = test::run_cli("run --model " + dir.string() + " --token-ids 1,5,7 --json -q --strict");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning:"), std::string::npos) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["config"]["ignored_keys"].empty());
}

TEST(CliConfigKeys, UnimplementedValuesAreRefusedByNameWithExit4) {
  struct Case {
    std::function<void(nlohmann::json&)> edit;
    std::string says;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& c) { c["rope_parameters"] = {{"rope_type", "mrope"}, {"rope_theta", 1e4}}; }, "'mrope'"},
      {[](nlohmann::json& c) { c["pretraining_tp"] = 4; }, "'pretraining_tp' = 4"},
      {[](nlohmann::json& c) { c["quantization_config"] = {{"quant_method", "awq"}}; }, "quantization_config"},
      {[](nlohmann::json& c) { c["rope_parameters"]["beta_fast"] = 8; }, "beta_fast"},
  };
  for (const auto& k : cases) {
    const fs::path dir = edited_fixture("v5-llama", k.edit);
    test::CliResult r = test::run_cli("run --model " + dir.string() + " --token-ids 1,5,7 --json");
    EXPECT_EQ(r.code, 4) << k.says << ": " << r.err;
    EXPECT_NE(r.err.find(k.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    fs::remove_all(dir);
  }
}

TEST(CliConfigKeys, ModelsAllListsFamiliesWithTheirParityRelease) {
  test::CliResult r = test::run_cli("models --all --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  std::set<std::string> families;
  for (const auto& f : j["families"]) {
    families.insert(f["family"].get<std::string>());
    EXPECT_NE(f["parity_checked"].get<std::string>().find("5.23"), std::string::npos) << f.dump();
  }
  for (const char* f : {"llama", "qwen3", "smollm3", "ministral", "arcee", "apertus", "seed_oss", "hunyuan_v1_dense",
                        "exaone4", "ernie4_5", "glm4", "granite"})
    EXPECT_TRUE(families.count(f)) << f;
  test::CliResult table = test::run_cli("models --all");
  EXPECT_NE(table.out.find("PARITY CHECKED"), std::string::npos);
  EXPECT_NE(table.out.find("Glm4ForCausalLM"), std::string::npos);
}

}  // namespace
}  // namespace lens
