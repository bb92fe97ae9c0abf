// The pieces of the BPE tokenizer pipeline, shared by its files, which follow HF `tokenizers`' modules:
// normalizers.cpp, pre_tokenizers.cpp, bpe_model.cpp (models/bpe), added_vocabulary.cpp, decoders.cpp,
// processors.cpp (post-processors), loader.cpp (tokenizer.json, vocab.json + merges.txt) and, above them,
// io/bpe_tokenizer.cpp (the Tokenizer). Internal: nothing outside src/io includes this.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "io/tokenizers/json_scan.h"
#include "io/tokenizers/regex.h"
#include "io/tokenizers/unicode.h"
#include "io/tokenizers/vocab.h"

struct UNormalizer2;

namespace lens::tok {

using json = nlohmann::json;

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

enum class PrependScheme { kAlways, kFirst, kNever };

struct PreStep {
  bool byte_level = false;  // ByteLevel (optional prefix space + GPT-2 regex)
  bool metaspace = false;   // Metaspace: ' ' -> replacement, prepend it per prepend_scheme, maybe split
  bool add_prefix_space = false;
  std::string replacement;  // Metaspace
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  std::shared_ptr<Regex> regex;  // Split pattern, or the GPT-2 pattern; null for ByteLevel(use_regex=false)
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
};

struct AddedToken {
  std::string content;
  std::string pattern;  // what is matched: `content`, normalized when `normalized` (set by finish())
  int32_t id = 0;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
};

// One normalizer step (HF `normalizers`); a tokenizer.json Sequence becomes several.
enum class TextNormKind { kUnicode, kLowercase, kStrip, kReplace, kPrepend };

struct NormStep {
  TextNormKind kind = TextNormKind::kUnicode;
  const UNormalizer2* form = nullptr;  // kUnicode: ICU's NFC/NFD/NFKC/NFKD instance (owned by ICU)
  bool strip_left = false, strip_right = false;  // kStrip
  std::shared_ptr<Regex> pattern;                // kReplace
  std::string content;                           // kReplace: replacement; kPrepend: prefix
};

// One decoder step (HF `decoders`), applied in order to the list of token strings.
enum class DecodeKind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };

struct DecodeStep {
  DecodeKind kind = DecodeKind::kByteLevel;
  std::shared_ptr<Regex> pattern;  // kReplace
  std::string content;             // kReplace: replacement; kStrip: the character; kMetaspace: replacement
  int start = 0, stop = 0;         // kStrip: how many `content` characters to strip at each end
  bool prepend = true;             // kMetaspace: prepend_scheme != never (strip the first token's space)
};

// One post-processing template for a single sequence: special-token ids before and after it.
struct Template {
  std::vector<int32_t> before, after;
};

// -----------------------------------------------------------------------------------------------------------
// ByteLevel (pre_tokenizers.cpp)

// GPT-2's byte <-> printable character table (bytes_to_unicode in openai/gpt-2 encoder.py).

struct ByteLevelTable {
  std::array<std::string, 256> byte_to_char;  // UTF-8 of the character standing for each byte
  std::array<int16_t, 324> char_to_byte;  // code point -> byte, -1 where none (all mapped chars are < 324)
  ByteLevelTable() {
    char_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? b : 256 + n++;
      append_utf8(byte_to_char[b], cp);
      char_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTable& byte_level();
/// Bytes as GPT-2's printable characters.
std::string bytes_to_byte_level(std::string_view bytes);
/// HF's ByteLevel decoder for one token: its bytes when every character is a byte-level character, else the
/// token's own UTF-8 (e.g. an added token containing a plain space).
std::string byte_level_to_bytes(std::string_view piece);

}  // namespace lens::tok

namespace lens {

struct BpeTokenizer::Impl {
  std::string source;  // file name(s), for messages

  // Model
  tok::Vocab vocab;      // piece (byte-level characters for byte-level models) -> id
  tok::MergeMap merges;  // (left id, right id) -> rank, merged id
  bool ignore_merges = false;
  std::string prefix, suffix;  // continuing_subword_prefix, end_of_word_suffix
  std::optional<int32_t> unk_id;
  bool fuse_unk = false, byte_fallback = false;
  std::array<std::array<int32_t, 256>, 4>
      byte_ids{};  // [first + 2*last][byte] -> id of the initial symbol, or -1
  std::array<int32_t, 256> byte_fallback_ids{};  // byte -> id of "<0xNN>", or -1

  std::vector<tok::NormStep> normalizer;  // empty: none

  // Added tokens, matched before pre-tokenization: pass 0 takes normalized=false tokens on the raw text,
  // pass 1 the normalized=true ones on the normalized text between pass 0's matches.
  std::vector<tok::AddedToken> added;
  std::array<std::array<std::vector<int>, 256>, 2>
      added_by_first_byte;  // indices into `added`, longest first

  std::vector<tok::PreStep> pre_steps;
  std::vector<tok::Template> templates;  // applied in order when add_special
  std::string special_rule;         // which rule chose `templates` (reported by `lens tokenize --json`)
  bool byte_level_model = true;     // a ByteLevel pre-tokenizer: BPE symbols are bytes, else characters
  bool has_decoder = true;          // false: HF joins tokens with " " (no decoder)
  std::vector<tok::DecodeStep> decoder;

  // Id -> piece (vocab and added tokens); `special` marks special added tokens (dropped by decode).
  std::vector<std::string> pieces;
  std::vector<uint8_t> present, special;

  std::optional<int32_t> bos, eos;

  // Per-word BPE cache (HF keeps one too); words up to kMaxCachedWord bytes, at most kMaxCacheEntries.
  static constexpr size_t kMaxCachedWord = 256;
  static constexpr size_t kMaxCacheEntries = 200000;
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  std::optional<int32_t> token_to_id(const std::string& s) const {
    for (const tok::AddedToken& t : added) {
      if (t.content == s) return t.id;
    }
    const int32_t id = vocab.find(s);
    if (id < 0) return std::nullopt;
    return id;
  }

  void finish(const std::string& where);
  std::string normalize(std::string_view text) const;
  void bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void initial_symbols_bytes(std::string_view word, std::vector<int32_t>& ids) const;
  void initial_symbols_chars(std::string_view word, std::vector<int32_t>& ids) const;
  void run_pre_steps(std::string_view piece, size_t step, bool at_start,
                     const std::function<void(std::string_view)>& emit) const;
  void split_added(std::string_view text, std::deque<std::string>& storage,
                   std::vector<std::pair<std::string_view, int32_t>>& out) const;
  void split_added_pass(int pass, std::string_view text,
                        std::vector<std::pair<std::string_view, int32_t>>& out) const;
};

}  // namespace lens

namespace lens::tok {

using Impl = BpeTokenizer::Impl;

// Reading components from tokenizer.json (each throws ModelError naming `where` and the component).
bool json_bool(const json& obj, const char* key, bool fallback, const std::string& where);
std::string json_string(const json& obj, const char* key, const std::string& where);
int32_t json_id(const json& v, const std::string& where);
/// Whether a pre_tokenizer (or a Sequence of them) contains ByteLevel.
bool has_byte_level(const json& pre);
void parse_pre_tokenizer(const json& p, const std::string& where, std::vector<PreStep>& steps);
void parse_normalizer(const json& n, const std::string& where, std::vector<NormStep>& steps);
void parse_post_processor(const json& p, const std::string& where, Impl& m);
void parse_decoder_step(const json& d, const std::string& where, std::vector<DecodeStep>& steps);
void parse_decoder(const json& d, const std::string& where, Impl& m);

// The BPE model's tables (bpe_model.cpp).
void add_vocab(Impl& m, const VocabEntries& v);
void add_merges(Impl& m, const MergeTexts& t, const std::function<std::string(size_t)>& where);

/// One decoder step on the whole list of token strings (decoders.cpp).
void apply_decoder(const DecodeStep& d, std::vector<std::string>& toks);

}  // namespace lens::tok
