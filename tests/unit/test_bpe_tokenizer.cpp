// Byte-level BPE tokenizer tests: id parity with HF `tokenizers` on tests/fixtures/tokenizer (made by
// tests/parity/make_tokenizer_fixtures.py) for GPT-2 (real vocab.json + merges.txt from LENS_SHARED_DIR,
// skipped when absent), a small Llama-3-style tokenizer.json and a Qwen2-style one (NFC normalizer) with
// normalizer variants; pre-tokenizer splits; round trips; broken files. Needs no Python and no network; the
// GPT-2 files are read in place, never copied into the repo.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "lens/error.h"

#ifndef LENS_SOURCE_DIR
#define LENS_SOURCE_DIR "."
#endif

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path source_dir() { return fs::path(LENS_SOURCE_DIR); }

fs::path shared_dir() {
  if (const char* env = std::getenv("LENS_SHARED_DIR")) return fs::path(env);
#ifdef LENS_SHARED_DIR
  return fs::path(LENS_SHARED_DIR);
#else
  return source_dir() / ".." / "shared";
#endif
}

fs::path fixture_dir() { return source_dir() / "tests" / "fixtures" / "tokenizer"; }
fs::path gpt2_dir() { return shared_dir() / "models" / "gpt2-tokenizer"; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
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
    if (v < 0) continue;                // '=' padding
    buf = ((buf << 6) | v) & 0xFFFFFF;  // only the last 24 bits are ever needed
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return out;
}

struct CorpusLine {
  std::string name;
  std::string bytes;  // exactly as stored, possibly invalid UTF-8
  bool raw = false;   // came from "b64" (may be invalid UTF-8)
};

const std::vector<CorpusLine>& corpus() {
  static const std::vector<CorpusLine> lines = [] {
    std::vector<CorpusLine> out;
    std::istringstream in(read_file(fixture_dir() / "corpus.jsonl"));
    std::string row;
    while (std::getline(in, row)) {
      if (row.empty()) continue;
      const json j = json::parse(row);
      CorpusLine c;
      c.name = j.at("name").get<std::string>();
      c.raw = j.contains("b64");
      c.bytes = c.raw ? base64_decode(j.at("b64").get<std::string>()) : j.at("text").get<std::string>();
      out.push_back(c);
    }
    return out;
  }();
  return lines;
}

const json& expected() {
  static const json j = json::parse(read_file(fixture_dir() / "expected_ids.json"));
  return j;
}

std::vector<int64_t> ids_of(const json& a) { return a.get<std::vector<int64_t>>(); }

// How many corpus lines get different expected ids from tokenizers `a` and `b` (expected_ids.json).
size_t lines_differing(const char* a, const char* b) {
  const json& x = expected()["tokenizers"][a];
  const json& y = expected()["tokenizers"][b];
  size_t differ = 0;
  for (size_t i = 0; i < x.size(); ++i) differ += x[i]["ids"] != y[i]["ids"] ? 1 : 0;
  return differ;
}

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("lens-bpe-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

bool contains_special_string(const std::string& s) {
  for (const char* t : {"<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>"}) {
    if (s.find(t) != std::string::npos) return true;
  }
  return false;
}

// Compares ids (with and without special tokens) and decode() with the HF fixture on every corpus line.
// `round_trip`: also decode(encode(x)) == x for valid UTF-8 lines without special-token strings.
void check_parity(const lens::Tokenizer& tok, const std::string& variant, bool round_trip) {
  const json& lines = expected().at("tokenizers").at(variant);
  ASSERT_EQ(lines.size(), corpus().size())
      << "fixture out of date: rerun tests/parity/make_tokenizer_fixtures.py";
  size_t matched = 0, round_trips = 0;
  for (size_t i = 0; i < corpus().size(); ++i) {
    const CorpusLine& c = corpus()[i];
    const json& e = lines[i];
    ASSERT_EQ(e.at("name").get<std::string>(), c.name);
    const auto ids = tok.encode(c.bytes, true);
    const auto plain = tok.encode(c.bytes, false);
    const std::string decoded = tok.decode(ids);
    const bool ok = ids == ids_of(e.at("ids")) && plain == ids_of(e.at("ids_no_special")) &&
                    decoded == e.at("decoded").get<std::string>();
    EXPECT_EQ(ids, ids_of(e.at("ids"))) << variant << " line '" << c.name << "'";
    EXPECT_EQ(plain, ids_of(e.at("ids_no_special"))) << variant << " line '" << c.name << "' (no special)";
    EXPECT_EQ(decoded, e.at("decoded").get<std::string>()) << variant << " line '" << c.name << "' (decode)";
    matched += ok ? 1 : 0;
    if (round_trip && !c.raw && !contains_special_string(c.bytes)) {
      EXPECT_EQ(tok.decode(ids), c.bytes) << variant << " round trip of '" << c.name << "'";
      ++round_trips;
    }
  }
  std::printf("[ parity   ] %s: %zu/%zu lines match HF tokenizers %s (ids, ids without specials, decode)%s\n",
              variant.c_str(), matched, corpus().size(), expected().value("tokenizers_version", "?").c_str(),
              round_trip ? (", " + std::to_string(round_trips) + " round trips checked").c_str() : "");
  EXPECT_EQ(matched, corpus().size());
}

std::unique_ptr<lens::Tokenizer> load_or_fail(const fs::path& dir) {
  auto tok = lens::load_bpe_tokenizer(dir);
  EXPECT_NE(tok, nullptr) << dir;
  return tok;
}

#define SKIP_WITHOUT_GPT2()                                                               \
  if (!fs::exists(gpt2_dir() / "vocab.json") || !fs::exists(gpt2_dir() / "merges.txt")) { \
    GTEST_SKIP() << "GPT-2 tokenizer not found at " << gpt2_dir()                         \
                 << " (set LENS_SHARED_DIR to the folder holding models/gpt2-tokenizer)"; \
  }

// A fixture tokenizer (`name`: llama3-style, qwen2-style) with its JSON changed by `edit`, written to `dir`.
template <typename Edit>
void write_fixture_variant(const std::string& name, const fs::path& dir, Edit edit) {
  json j = json::parse(read_file(fixture_dir() / name / "tokenizer.json"));
  edit(j);
  write_file(dir / "tokenizer.json", j.dump());
  fs::copy_file(fixture_dir() / name / "tokenizer_config.json", dir / "tokenizer_config.json");
}

template <typename Edit>
void write_llama3_variant(const fs::path& dir, Edit edit) {
  write_fixture_variant("llama3-style", dir, edit);
}

}  // namespace

// -----------------------------------------------------------------------------------------------------------
// Parity with HF tokenizers

TEST(BpeTokenizer, Gpt2VocabMergesParity) {
  SKIP_WITHOUT_GPT2();
  auto tok = load_or_fail(gpt2_dir());
  ASSERT_NE(tok, nullptr);
  check_parity(*tok, "gpt2", true);
  EXPECT_EQ(tok->kind(), "bpe");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int64_t>{15496, 995}));  // no BOS for GPT-2
}

TEST(BpeTokenizer, Gpt2AddPrefixSpaceParity) {
  SKIP_WITHOUT_GPT2();
  TempDir dir;
  fs::create_symlink(fs::absolute(gpt2_dir() / "vocab.json"), dir.path / "vocab.json");
  fs::create_symlink(fs::absolute(gpt2_dir() / "merges.txt"), dir.path / "merges.txt");
  write_file(dir.path / "tokenizer_config.json", R"({"add_prefix_space": true})");
  auto tok = load_or_fail(dir.path);
  ASSERT_NE(tok, nullptr);
  check_parity(*tok, "gpt2-add-prefix-space", false);
}

TEST(BpeTokenizer, Gpt2AddBosTokenFromConfig) {
  SKIP_WITHOUT_GPT2();
  TempDir dir;
  fs::create_symlink(fs::absolute(gpt2_dir() / "vocab.json"), dir.path / "vocab.json");
  fs::create_symlink(fs::absolute(gpt2_dir() / "merges.txt"), dir.path / "merges.txt");
  write_file(dir.path / "tokenizer_config.json", R"({"add_bos_token": true, "bos_token": "<|endoftext|>"})");
  auto tok = load_or_fail(dir.path);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int64_t>{50256, 15496, 995}));
  EXPECT_EQ(tok->encode("Hello world", false), (std::vector<int64_t>{15496, 995}));
}

TEST(BpeTokenizer, Llama3StyleParity) {
  auto tok = load_or_fail(fixture_dir() / "llama3-style");
  ASSERT_NE(tok, nullptr);
  check_parity(*tok, "llama3-style", true);
  EXPECT_EQ(tok->bos_id(), 0);  // <|begin_of_text|>
  EXPECT_EQ(tok->eos_id(), 1);  // <|end_of_text|>
  EXPECT_EQ(tok->encode("").size(), 1u);
}

TEST(BpeTokenizer, Llama3StyleWithoutIgnoreMergesParity) {
  TempDir dir;
  write_llama3_variant(dir.path, [](json& j) { j["model"]["ignore_merges"] = false; });
  auto tok = load_or_fail(dir.path);
  ASSERT_NE(tok, nullptr);
  check_parity(*tok, "llama3-style-no-ignore-merges", true);
  // The fixture leaves some vocabulary words unreachable by merges, so the flag must change some lines.
  const size_t differ = lines_differing("llama3-style", "llama3-style-no-ignore-merges");
  std::printf("[ parity   ] ignore_merges changes %zu lines\n", differ);
  EXPECT_GT(differ, 0u);
}

TEST(BpeTokenizer, Llama3StyleStringMergesParity) {
  // Older tokenizer.json files store merges as "left right" strings.
  TempDir dir;
  write_llama3_variant(dir.path, [](json& j) {
    json merges = json::array();
    for (const json& m : j["model"]["merges"])
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    j["model"]["merges"] = merges;
  });
  auto tok = load_or_fail(dir.path);
  ASSERT_NE(tok, nullptr);
  check_parity(*tok, "llama3-style", false);
}

TEST(BpeTokenizer, Qwen2StyleNfcParity) {
  // NFC normalizer, Qwen2's split regex, ByteLevel, no BOS (tokenizer_config.json: bos_token null).
  auto tok = load_or_fail(fixture_dir() / "qwen2-style");
  ASSERT_NE(tok, nullptr);
  check_parity(*tok, "qwen2-style", false);  // no round trip: NFC changes the text
  EXPECT_FALSE(tok->bos_id().has_value());
  EXPECT_EQ(tok->eos_id(), 0);  // <|endoftext|>
  EXPECT_TRUE(tok->encode("").empty());
  // Decomposed and precomposed forms give the same ids; decode gives the precomposed (NFC) text.
  EXPECT_EQ(tok->encode("Cafe\xCC\x81"), tok->encode("Caf\xC3\xA9"));
  EXPECT_EQ(tok->decode(tok->encode("A\xCC\x8A")), "\xC3\x85");
  // NFC must matter on the fixture: the same tokenizer without its normalizer differs on some lines.
  const size_t differ = lines_differing("qwen2-style", "qwen2-style-no-normalizer");
  std::printf("[ parity   ] NFC changes %zu lines\n", differ);
  EXPECT_GE(differ, 7u);
}

TEST(BpeTokenizer, Qwen2StyleWithoutNormalizerParity) {
  TempDir dir;
  write_fixture_variant("qwen2-style", dir.path, [](json& j) { j["normalizer"] = nullptr; });
  auto tok = load_or_fail(dir.path);
  ASSERT_NE(tok, nullptr);
  check_parity(*tok, "qwen2-style-no-normalizer", true);
}

TEST(BpeTokenizer, NormalizerVariantsParity) {
  // qwen2-style with other normalizers (NFKC as NFKD+NFC, NFD, NFKD, Replace, Lowercase, Strip, Prepend)
  // and added tokens with normalized=true (matched by their normalized content, special ones too), exactly
  // as make_tokenizer_fixtures.py built them for HF.
  const json& variants = expected().at("variants");
  ASSERT_GE(variants.size(), 3u);
  for (auto it = variants.begin(); it != variants.end(); ++it) {
    TempDir dir;
    write_fixture_variant("qwen2-style", dir.path, [&](json& j) {
      j["normalizer"] = it.value()["normalizer"];
      for (const json& t : it.value()["added_tokens"]) j["added_tokens"].push_back(t);
    });
    auto tok = load_or_fail(dir.path);
    ASSERT_NE(tok, nullptr);
    check_parity(*tok, it.key(), false);
  }
}

TEST(BpeTokenizer, PreTokenizerSplitParity) {
  // Each fixture pre-tokenizer, followed by ByteLevel(use_regex=false), against HF's pre_tokenize_str.
  for (const json& entry : expected().at("pre_tokenizers")) {
    TempDir dir;
    json tj = {
        {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", json::array()}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {entry["spec"], {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
        {"decoder", {{"type", "ByteLevel"}}}};
    write_file(dir.path / "tokenizer.json", tj.dump());
    auto loaded = lens::load_bpe_tokenizer(dir.path);
    ASSERT_NE(loaded, nullptr);
    const auto& tok = dynamic_cast<const lens::BpeTokenizer&>(*loaded);
    size_t matched = 0;
    for (size_t i = 0; i < corpus().size(); ++i) {
      const auto want = entry["pieces"][i].get<std::vector<std::string>>();
      const auto got = tok.pre_tokenize(corpus()[i].bytes);
      EXPECT_EQ(got, want) << entry["spec"].dump() << " on line '" << corpus()[i].name << "'";
      matched += got == want ? 1 : 0;
    }
    std::printf("[ parity   ] pre-tokenizer %s: %zu/%zu lines\n", entry["spec"].dump().substr(0, 70).c_str(),
                matched, corpus().size());
  }
}

// -----------------------------------------------------------------------------------------------------------
// Text handling

TEST(BpeTokenizer, SanitizeUtf8LikePythonReplace) {
  // Expected strings: bytes.decode("utf-8", errors="replace") in Python.
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(lens::sanitize_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(lens::sanitize_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(lens::sanitize_utf8("\xF0\x9F\x98 x"), r + " x");  // truncated 4-byte sequence: one U+FFFD
  EXPECT_EQ(lens::sanitize_utf8("\xED\xA0\x80"), r + r + r);   // surrogate: ED is a subpart of length 1
  EXPECT_EQ(lens::sanitize_utf8("\xC0\xAF"), r + r);           // overlong
  EXPECT_EQ(lens::sanitize_utf8("\xE2\x82"), r);               // truncated at end
  EXPECT_EQ(lens::sanitize_utf8("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(lens::sanitize_utf8("\xFF"), r);
}

TEST(BpeTokenizer, TokenTextAndPieces) {
  SKIP_WITHOUT_GPT2();
  auto tok = load_or_fail(gpt2_dir());
  ASSERT_NE(tok, nullptr);
  const auto the = tok->encode(" the");
  ASSERT_EQ(the.size(), 1u);
  EXPECT_EQ(tok->piece(the[0]), "\xC4\xA0the");  // "Ġthe"
  EXPECT_EQ(tok->token_text(the[0]), " the");
  EXPECT_EQ(tok->piece(50256), "<|endoftext|>");
  EXPECT_EQ(tok->token_text(50256), "<|endoftext|>");
  EXPECT_EQ(tok->token_text(198), "\n");
  // A lone emoji is split into byte tokens that are not valid UTF-8 on their own: shown as \xNN escapes.
  const auto pizza = tok->encode("\xF0\x9F\x8D\x95");  // U+1F355
  ASSERT_GT(pizza.size(), 1u);
  std::string joined;
  for (int64_t id : pizza) joined += tok->token_text(id);
  EXPECT_NE(joined.find("\\x"), std::string::npos) << joined;
  for (int64_t id = 0; id < tok->vocab_size(); ++id) {
    EXPECT_EQ(lens::sanitize_utf8(tok->token_text(id)), tok->token_text(id)) << "token " << id;
  }
  EXPECT_THROW(tok->piece(tok->vocab_size()), lens::InputError);
  EXPECT_THROW(tok->token_text(-1), lens::InputError);
  EXPECT_EQ(tok->decode({15496, 99999999, 995}), "Hello world");  // unknown ids are skipped, as in HF
}

TEST(BpeTokenizer, RandomBytesRoundTripAfterReplacement) {
  // Arbitrary bytes never crash, and decode(encode(x)) gives back x with invalid UTF-8 replaced by U+FFFD.
  auto llama = load_or_fail(fixture_dir() / "llama3-style");
  ASSERT_NE(llama, nullptr);
  std::vector<std::unique_ptr<lens::Tokenizer>> toks;
  toks.push_back(std::move(llama));
  if (fs::exists(gpt2_dir() / "vocab.json")) toks.push_back(load_or_fail(gpt2_dir()));
  uint64_t state = 12345;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  const std::string alphabet[] = {" ",
                                  "  ",
                                  "\n",
                                  "\t",
                                  "a",
                                  "Z",
                                  "7",
                                  "'s",
                                  "\xC3\xA9",
                                  "\xE6\x97\xA5",
                                  "\xF0\x9F\x98\x80",
                                  "\xE2\x80\x8D",
                                  "!",
                                  "\r\n",
                                  "\xC2\xA0"};
  for (int i = 0; i < 400; ++i) {
    std::string x;
    const int n = static_cast<int>(next() % 64);
    for (int k = 0; k < n; ++k) {
      if (next() % 3 == 0) {
        x += static_cast<char>(next() % 256);  // any byte, often invalid UTF-8
      } else {
        x += alphabet[next() % (sizeof alphabet / sizeof alphabet[0])];
      }
    }
    for (const auto& tok : toks) {
      EXPECT_EQ(tok->decode(tok->encode(x)), lens::sanitize_utf8(x)) << "case " << i;
    }
  }
}

TEST(BpeTokenizer, LongInputsAreFast) {
  SKIP_WITHOUT_GPT2();
  auto tok = load_or_fail(gpt2_dir());
  ASSERT_NE(tok, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  // One 200 kB word, a 200 kB number, a 200 kB whitespace run and many short words.
  const std::string word(200000, 'a'), number(200000, '7'), spaces(200000, ' ');
  std::string words;
  for (int i = 0; i < 20000; ++i) words += " word" + std::to_string(i % 1000);
  for (const std::string* s : std::vector<const std::string*>{&word, &number, &spaces, &words}) {
    const auto ids = tok->encode(*s);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok->decode(ids), *s);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 20.0);
}

// -----------------------------------------------------------------------------------------------------------
// Which directories load, and errors for broken files

namespace {

// Expects a ModelError whose message contains each of `parts`.
template <typename F>
void expect_model_error(F f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "expected lens::ModelError";
  } catch (const lens::ModelError& e) {
    for (const char* p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

const char* const kByteLevelPre = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";

std::string tokenizer_json(const std::string& model, const std::string& pre = kByteLevelPre) {
  return R"({"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": )" + pre +
         R"(, "post_processor": null, "decoder": {"type": "ByteLevel"}, "model": )" + model + "}";
}

}  // namespace

TEST(BpeTokenizer, NothingToLoadGivesNull) {
  TempDir dir;
  EXPECT_EQ(lens::load_bpe_tokenizer(dir.path), nullptr);
  // Llama-2 style tokenizer.json (sentencepiece BPE: Metaspace, byte_fallback): loaded on its own, left to
  // the sentencepiece loader when a tokenizer.model sits next to it.
  write_file(dir.path / "tokenizer.json",
             tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "\u2581": 1, "\u2581a": 2}, "merges": [["\u2581", "a"]], "byte_fallback": true})",
                            R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first"})"));
  auto tok = lens::load_bpe_tokenizer(dir.path);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("a a", false), (std::vector<int64_t>{2, 2}));
  write_file(dir.path / "tokenizer.model", "not read here");
  EXPECT_EQ(lens::load_bpe_tokenizer(dir.path), nullptr);
  write_file(dir.path / "tokenizer.json", tokenizer_json(R"({"type": "Unigram", "vocab": [["a", 0.0]]})"));
  EXPECT_EQ(lens::load_bpe_tokenizer(dir.path), nullptr);
  fs::remove(dir.path / "tokenizer.model");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "Unigram", "not supported"});
}

// A 200,000-deep tokenizer.json used to overflow the stack inside nlohmann's recursive parser (a
// segmentation fault); the depth is now checked before parsing. Same for tokenizer_config.json.
TEST(BpeTokenizer, DeeplyNestedJsonIsAnErrorNotACrash) {
  TempDir dir;
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  write_file(dir.path / "tokenizer.json", deep);
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "nested deeper than 64"});
  write_file(dir.path / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a\"[[[": 0}, "merges": []}})");
  write_file(dir.path / "tokenizer_config.json", "{\"a\": " + deep + "}");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer_config.json", "nested deeper"});
}

// Components lens does not implement are refused by name, never skipped.
TEST(BpeTokenizer, UnknownComponentsAreRefusedByName) {
  TempDir dir;
  const std::string model = R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})";
  write_file(dir.path / "tokenizer.json", tokenizer_json(model, R"({"type": "BertPreTokenizer"})"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"BertPreTokenizer"});
  std::string j = tokenizer_json(model);
  const std::string dec = R"("decoder": {"type": "ByteLevel"})";
  j.replace(j.find(dec), dec.size(), R"("decoder": {"type": "WordPiece"})");
  write_file(dir.path / "tokenizer.json", j);
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"WordPiece"});
  j = tokenizer_json(model);
  j.replace(j.find(R"("normalizer": null)"), 18, R"("normalizer": {"type": "BertNormalizer"})");
  write_file(dir.path / "tokenizer.json", j);
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"BertNormalizer"});
  // Invalid UTF-8 inside the vocabulary: nlohmann rejects it while parsing.
  write_file(dir.path / "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xff\": 0}, \"merges\": []}}");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "invalid JSON"});
}

TEST(BpeTokenizer, BrokenFilesThrowModelError) {
  TempDir dir;
  const auto tj = dir.path / "tokenizer.json";
  write_file(tj, R"({"model": {"type": "BPE", "vocab": {"a": 0}, )");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "invalid JSON"});

  write_file(tj, tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}})"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "merges", "missing"});

  write_file(tj, tokenizer_json(R"({"type": "SuperBPE", "vocab": {"a": 0}, "merges": []})"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); },
                     {"tokenizer.json", "unknown model type", "SuperBPE"});

  write_file(tj, tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]})"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "merges[0]", "'ab'"});

  write_file(tj, tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]})"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "merges[0]"});

  write_file(
      tj,
      tokenizer_json(
          R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})",
          R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(["}, "behavior": "Isolated"}, {"type": "ByteLevel"}]})"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "cannot compile regex"});

  write_file(
      tj, tokenizer_json(
              R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})",
              R"({"type": "Sequence", "pretokenizers": [{"type": "UnicodeScripts"}, {"type": "ByteLevel"}]})"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "UnicodeScripts"});

  // Normalizers other than NFC/NFD/NFKC/NFKD/Lowercase/Strip/Replace/Prepend are refused, also inside a
  // Sequence.
  const std::pair<const char*, const char*> bad_normalizers[] = {
      {R"({"type": "BertNormalizer", "lowercase": true})", "'BertNormalizer'"},
      {R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled"}]})", "'Precompiled'"},
      {R"({"type": "Replace", "pattern": {"String": ""}, "content": "x"})", "non-empty"}};
  for (const auto& [normalizer, message] : bad_normalizers) {
    json j = json::parse(tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})"));
    j["normalizer"] = json::parse(normalizer);
    write_file(tj, j.dump());
    expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); },
                       {"tokenizer.json", "normalizer", message});
  }

  // A readable tokenizer.json with a broken tokenizer_config.json.
  write_file(tj, tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": []})"));
  write_file(dir.path / "tokenizer_config.json", "{not json");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer_config.json", "invalid JSON"});
}

TEST(BpeTokenizer, BrokenVocabMergesThrowModelError) {
  TempDir dir;
  write_file(dir.path / "vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); },
                     {"vocab.json", "merges.txt"});  // merges missing

  write_file(dir.path / "merges.txt", "#version: 0.2\na b\nb c\n");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"merges.txt:3", "'c'"});

  write_file(dir.path / "merges.txt", "#version: 0.2\na b c\n");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"merges.txt:2", "two tokens"});

  write_file(dir.path / "merges.txt", "#version: 0.2\n");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"merges.txt", "no merges"});

  write_file(dir.path / "merges.txt", "#version: 0.2\na b\n");
  write_file(dir.path / "vocab.json", R"(["a", "b"])");
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"vocab.json", "JSON object"});

  write_file(dir.path / "vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  auto tok = lens::load_bpe_tokenizer(dir.path);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("ab"), (std::vector<int64_t>{2}));
  EXPECT_EQ(tok->encode("ba"), (std::vector<int64_t>{1, 0}));
}

// model.vocab and model.merges are read in place by the loader's own scanner (tokenizers/json_scan.cpp), not by
// nlohmann: escapes, surrogate pairs and repeated keys must come out as nlohmann's DOM has them.
TEST(BpeTokenizer, VocabAndMergesReadInPlaceAsNlohmannDoes) {
  TempDir dir;
  const std::vector<std::string> pieces = {"a", "\xC3\xA9", "\xF0\x9F\x98\x80", "q\"", "\\", "\n\t", "/", "a\xC3\xA9"};
  json vocab = json::object();
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = i;
  const json model = {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({json::array({"a", "\xC3\xA9"})})}};
  for (bool ascii : {false, true}) {  // ensure_ascii writes \u00e9 and the pair \ud83d\ude00
    write_file(dir.path / "tokenizer.json", tokenizer_json(model.dump(-1, ' ', ascii), "null"));
    auto tok = lens::load_bpe_tokenizer(dir.path);
    ASSERT_NE(tok, nullptr);
    for (size_t i = 0; i < pieces.size(); ++i) EXPECT_EQ(tok->piece(i), pieces[i]) << i << " ascii " << ascii;
    EXPECT_EQ(tok->encode("a\xC3\xA9\xF0\x9F\x98\x80", false), (std::vector<int64_t>{7, 2}));
  }
  write_file(dir.path / "tokenizer.json",
             tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "a": 2}, "merges": []})", "null"));
  EXPECT_EQ(lens::load_bpe_tokenizer(dir.path)->encode("a", false), (std::vector<int64_t>{2}));  // last wins
  write_file(dir.path / "tokenizer.json",
             tokenizer_json(R"({"type": "BPE", "vocab": {"\ud800": 0}, "merges": []})", "null"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "invalid JSON", "surrogate"});
  write_file(dir.path / "tokenizer.json",
             tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0.5}, "merges": []})", "null"));
  expect_model_error([&] { lens::load_bpe_tokenizer(dir.path); }, {"tokenizer.json", "non-negative integer", "0.5"});
}
