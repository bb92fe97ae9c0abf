// `lens tokenize`: ids and pieces from the same tokenizers `lens run --prompt` uses, checked
// against HF tokenizers' ids (tests/fixtures/tokenizer/expected_ids.json) and llama2.c's encoder.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "cli_util.h"
#include "test_util.h"

namespace lens {
namespace {

TEST(Tokenize, Llama3StyleTokenizerJsonMatchesHf) {
  const auto expected = test::read_json(test::fixtures_dir() / "tokenizer" / "expected_ids.json");
  const auto& first = expected["tokenizers"]["llama3-style"][0];
  ASSERT_EQ(first["name"], "ascii");
  test::CliResult r = test::run_cli("tokenize --model " + (test::fixtures_dir() / "tokenizer" / "llama3-style").string() +
                                    " 'The quick brown fox jumps over the lazy dog.' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokenizer"], "bpe");
  EXPECT_EQ(j["ids"], first["ids"]);
  EXPECT_EQ(j["decoded"], "The quick brown fox jumps over the lazy dog.");
  EXPECT_EQ(j["pieces"].size(), j["ids"].size());
}

TEST(Tokenize, SentencepieceModelAndTable) {
  const auto dir = test::shared_dir() / "models" / "stories260K";
  LENS_REQUIRE_SHARED(dir);
  test::CliResult r = test::run_cli("tokenize --model " + dir.string() + " 'Once upon a time' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ids"], nlohmann::json({1, 403, 407, 261, 378}));  // run.c's prompt ids
  r = test::run_cli("tokenize --model " + dir.string() + " 'Once upon a time' --no-special");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("4 tokens (sentencepiece tokenizer)"), std::string::npos) << r.out;
}

TEST(Tokenize, DirectoryWithoutTokenizerIsAnError) {
  test::CliResult r = test::run_cli("tokenize --model " + (test::fixtures_dir() / "tiny-gpt2").string() + " hello");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("no tokenizer files"), std::string::npos) << r.err;
}

// A hostile tokenizer.json nested 200,000 deep used to kill lens with a segmentation fault.
TEST(Tokenize, DeeplyNestedTokenizerJsonIsOneLineErrorExit4) {
  const auto dir = test::temp_dir("tokenize-deep");
  {
    std::ofstream out(dir / "tokenizer.json");
    out << std::string(200000, '[') << std::string(200000, ']');
  }
  test::CliResult r = test::run_cli("tokenize --model " + dir.string() + " hello");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("nested deeper than 64"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Tokenize, FileGivesOneJsonlRecordPerLineAndRuleInJson) {
  const auto tok_dir = test::fixtures_dir() / "tokenizer" / "llama3-style";
  const auto dir = test::temp_dir("tokenize-file");
  {
    std::ofstream out(dir / "texts.jsonl");
    out << R"({"text": "The quick brown fox jumps over the lazy dog."})" << "\n" << R"({"text": "a\nb"})" << "\n";
  }
  test::CliResult r = test::run_cli("tokenize --model " + tok_dir.string() + " --file " + (dir / "texts.jsonl").string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(lines, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u);
  const auto expected = test::read_json(test::fixtures_dir() / "tokenizer" / "expected_ids.json");
  EXPECT_EQ(rows[0]["ids"], expected["tokenizers"]["llama3-style"][0]["ids"]);
  EXPECT_EQ(rows[1]["line"], 2);
  r = test::run_cli("tokenize --model " + tok_dir.string() + " hi --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(nlohmann::json::parse(r.out)["special_rule"].get<std::string>().find("post_processor"), std::string::npos);
}

}  // namespace
}  // namespace lens
