// `lens tokenize`: ids and pieces from the same tokenizers `lens run --prompt` uses, checked
// against HF tokenizers' ids (tests/fixtures/tokenizer/expected_ids.json) and llama2.c's encoder.
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

}  // namespace
}  // namespace lens
