// Byte-level BPE tokenizer matching Hugging Face `tokenizers` ids (scope in bpe_tokenizer.h).
// One encode: invalid UTF-8 -> U+FFFD; split out added tokens (two passes, like HF's AddedVocabulary);
// pre-tokenize the rest (Split / ByteLevel regexes: HF's Oniguruma patterns translated to PCRE2 in UTF+UCP
// mode); BPE each pre-token on its bytes (HF's merge order, cached per word); post-process
// (TemplateProcessing, add_bos_token). Normalizers (NFC/NFD/NFKC/NFKD through ICU, Lowercase, Strip,
// Replace, Prepend, Sequence) run on the text between added tokens, as in HF's AddedVocabulary (below).
// Not here: other normalizers, offsets, BPE dropout, pairs, truncation/padding, sentencepiece-style
// (Metaspace) BPE.

#define PCRE2_CODE_UNIT_WIDTH 8
#include "bpe_tokenizer.h"

#include <pcre2.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "io/tokenizers/json_scan.h"
#include "io/tokenizers/unicode.h"
#include "io/tokenizers/vocab.h"
#include "lens/error.h"

namespace lens {

using namespace tok;  // NOLINT: the tokenizer pieces (tokenizers/*.h)

namespace {

using json = nlohmann::json;

// -----------------------------------------------------------------------------------------------------------
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

const ByteLevelTable& byte_level() {
  static const ByteLevelTable table;
  return table;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_level().byte_to_char[b];
  return out;
}

// HF's ByteLevel decoder for one token: its bytes when every character is a byte-level character, else the
// token's own UTF-8 (e.g. an added token containing a plain space).
std::string byte_level_to_bytes(std::string_view piece) {
  std::string out;
  uint32_t cp;
  for (size_t i = 0; i < piece.size();) {
    const int n = utf8_step(piece, i, &cp);
    if (n < 0 || cp >= 324 || byte_level().char_to_byte[cp] < 0) return std::string(piece);
    out += static_cast<char>(byte_level().char_to_byte[cp]);
    i += n;
  }
  return out;
}

// -----------------------------------------------------------------------------------------------------------
// Regexes. HF compiles pre-tokenizer patterns with Oniguruma (Ruby syntax); PCRE2 differs in a few escapes:
// Oniguruma's \s is Unicode White_Space (PCRE2's also takes U+180E), its \w is Alphabetic, marks, \p{Nd},
// \p{Pc} and, below U+0100, also ² ³ ¹ ¼ ½ ¾ (checked against HF on every code point up to U+2FFFF: the only
// differences left are characters newer than PCRE2's Unicode tables), and its \h is a hex digit (PCRE2:
// horizontal space). Those are rewritten; everything else is passed through.

const char* const kOnigWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE})";

std::string onig_to_pcre2(const std::string& p) {
  std::string out;
  int class_depth = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[++i];
      const bool in_class = class_depth > 0;
      if (n == 's') {
        out += "\\p{White_Space}";
      } else if (n == 'S') {
        out += "\\P{White_Space}";
      } else if (n == 'w') {
        out += in_class ? kOnigWord : "[" + std::string(kOnigWord) + "]";
      } else if (n == 'W' && !in_class) {
        out += "[^" + std::string(kOnigWord) + "]";
      } else if (n == 'h') {
        out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
      } else if (n == 'H' && !in_class) {
        out += "[^0-9a-fA-F]";
      } else {
        out += '\\';
        out += n;
      }
      continue;
    }
    if (c == '[') {
      ++class_depth;
    } else if (c == ']' && class_depth > 0) {
      --class_depth;
    }
    out += c;
  }
  return out;
}

// Per-thread PCRE2 match state: match data (one pair: the whole match) and a JIT stack large enough for
// long runs of whitespace or letters.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

class Regex {
 public:
  // `literal`: match `pattern` as a plain string (HF's Split with a String pattern).
  Regex(const std::string& pattern, bool literal, const std::string& where) {
    const std::string translated = literal ? pattern : onig_to_pcre2(pattern);
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);  // LITERAL rejects UCP
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options, &err,
                          &err_offset, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw ModelError(where + ": cannot compile regex '" + pattern + "' at offset " +
                       std::to_string(err_offset) + ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches in valid UTF-8 `s`, left to right, as (begin, end) byte offsets. After an empty
  // match the search resumes one character later, as Oniguruma's and Rust's iterators do.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
    MatchState& st = match_state();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        throw InputError(std::string("pre-tokenizer regex failed on the input text: ") +
                         reinterpret_cast<const char*>(msg));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
      out.emplace_back(ov[0], ov[1]);
      if (ov[1] > ov[0]) {
        pos = ov[1];
      } else {  // empty match: step over one character
        if (ov[1] >= s.size()) break;
        pos = ov[1] + 1;
        while (pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) ++pos;
      }
    }
  }

 private:
  pcre2_code* code_ = nullptr;
};

// GPT-2's pattern, used by HF's ByteLevel pre-tokenizer when use_regex is true.
const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// -----------------------------------------------------------------------------------------------------------
// JSON helpers

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw ModelError(path.string() + ": cannot open file");
  std::string text(static_cast<size_t>(in.tellg()), '\0');  // one read into a buffer of the file's size
  in.seekg(0);
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  if (!in) throw ModelError(path.string() + ": read error");
  return text;
}

// Tokenizer files nest a few levels (a Sequence of Sequences at most); nlohmann's parser and the json
// destructor recurse once per level, so a hostile file nested 200,000 deep would overflow the stack. The
// depth is checked on the raw text before parsing. The size bound keeps a stray multi-GB file from
// exhausting memory (Gemma 3's 262k-token tokenizer.json is 33 MB).
constexpr std::uintmax_t kMaxJsonBytes = 1ull << 30;

}  // namespace

void check_json_depth(std::string_view text, const std::string& where) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw ModelError(where + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                         " levels (at byte " + std::to_string(i) + "); refusing to parse it");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

namespace {

// The text of a JSON file, refused above kMaxJsonBytes.
std::string read_json_text(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxJsonBytes) {
    throw ModelError(path.string() + ": " + std::to_string(size) + " bytes; refusing JSON files over " +
                     std::to_string(kMaxJsonBytes >> 20) + " MiB");
  }
  return read_text_file(path);
}

json parse_json_file(const std::filesystem::path& path) { return parse_json_dom(read_json_text(path), path.string()); }

// A special token written in tokenizer_config.json: a string, an AddedToken dict ({"content": ...}) or null.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

bool json_bool(const json& obj, const char* key, bool fallback, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  if (!obj[key].is_boolean()) throw ModelError(where + ": \"" + key + "\" must be true or false");
  return obj[key].get<bool>();
}

std::string json_string(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) {
    throw ModelError(where + ": missing string \"" + key + "\"");
  }
  return obj[key].get<std::string>();
}

int32_t json_id(const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
    throw ModelError(where + ": token id must be a non-negative integer, got " + v.dump());
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

}  // namespace

// -----------------------------------------------------------------------------------------------------------
// The loaded tokenizer

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

struct BpeTokenizer::Impl {
  std::string source;  // file name(s), for messages

  // Model
  Vocab vocab;      // piece (byte-level characters for byte-level models) -> id
  MergeMap merges;  // (left id, right id) -> rank, merged id
  bool ignore_merges = false;
  std::string prefix, suffix;  // continuing_subword_prefix, end_of_word_suffix
  std::optional<int32_t> unk_id;
  bool fuse_unk = false, byte_fallback = false;
  std::array<std::array<int32_t, 256>, 4>
      byte_ids{};  // [first + 2*last][byte] -> id of the initial symbol, or -1
  std::array<int32_t, 256> byte_fallback_ids{};  // byte -> id of "<0xNN>", or -1

  std::vector<NormStep> normalizer;  // empty: none

  // Added tokens, matched before pre-tokenization: pass 0 takes normalized=false tokens on the raw text,
  // pass 1 the normalized=true ones on the normalized text between pass 0's matches.
  std::vector<AddedToken> added;
  std::array<std::array<std::vector<int>, 256>, 2>
      added_by_first_byte;  // indices into `added`, longest first

  std::vector<PreStep> pre_steps;
  std::vector<Template> templates;  // applied in order when add_special
  std::string special_rule;         // which rule chose `templates` (reported by `lens tokenize --json`)
  bool byte_level_model = true;     // a ByteLevel pre-tokenizer: BPE symbols are bytes, else characters
  bool has_decoder = true;          // false: HF joins tokens with " " (no decoder)
  std::vector<DecodeStep> decoder;

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
    for (const AddedToken& t : added) {
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

// Builds the id tables once the vocabulary, merges and added tokens are known.
void BpeTokenizer::Impl::finish(const std::string& where) {
  size_t n = 0;
  vocab.for_each([&](std::string_view, int32_t id) { n = std::max<size_t>(n, static_cast<size_t>(id) + 1); });
  for (const AddedToken& t : added) n = std::max<size_t>(n, static_cast<size_t>(t.id) + 1);
  pieces.assign(n, std::string());
  present.assign(n, 0);
  special.assign(n, 0);
  vocab.for_each([&](std::string_view piece, int32_t id) {
    pieces[id].assign(piece);
    present[id] = 1;
  });
  // HF (tokenizers 0.23) keeps a normalized=true token under its normalized content: id_to_token and
  // decode give that, and decode skips it only when that string is some special token's content.
  std::unordered_map<std::string, bool> special_contents;
  for (AddedToken& t : added) {
    if (t.content.empty()) throw ModelError(where + ": added token " + std::to_string(t.id) + " is empty");
    t.pattern = t.normalized ? normalize(t.content) : t.content;
    if (t.special) special_contents[t.content] = true;
  }
  for (const AddedToken& t : added) {
    pieces[t.id] = t.pattern;
    present[t.id] = 1;
    special[t.id] = special_contents.count(t.pattern) ? 1 : 0;
  }
  for (int first = 0; first < 2; ++first) {
    for (int last = 0; last < 2; ++last) {
      for (int b = 0; b < 256; ++b) {
        std::string s = (first ? "" : prefix) + byte_level().byte_to_char[b] + (last ? suffix : "");
        byte_ids[first + 2 * last][b] = vocab.find(s);
      }
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_fallback_ids[b] = vocab.find(name);
  }
  for (auto& pass : added_by_first_byte) {
    for (auto& v : pass) v.clear();
  }
  // HF partitions on `normalized` alone (special tokens too) and matches normalized tokens by their
  // normalized content (AddedVocabulary::refresh_added_tokens).
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& t = added[i];
    if (t.pattern.empty()) continue;  // normalized away (e.g. Strip of a whitespace token): never matched
    added_by_first_byte[t.normalized ? 1 : 0][static_cast<unsigned char>(t.pattern[0])].push_back(
        static_cast<int>(i));
  }
  for (auto& pass : added_by_first_byte) {
    for (auto& v : pass) {
      std::stable_sort(v.begin(), v.end(),
                       [&](int a, int b) { return added[a].pattern.size() > added[b].pattern.size(); });
    }
  }
}

// -----------------------------------------------------------------------------------------------------------
// Normalizers

namespace {

std::string strip(std::string_view s, bool left, bool right) {
  uint32_t cp = 0;
  int n = 0;
  while (left && !s.empty() && (n = utf8_step(s, 0, &cp)) > 0 && is_white_space(cp)) s.remove_prefix(n);
  size_t at = 0;
  while (right && !s.empty() && is_white_space(last_code_point(s, &at))) s = s.substr(0, at);
  return std::string(s);
}

std::string replace_all(const Regex& pattern, const std::string& content, std::string_view s) {
  std::vector<std::pair<size_t, size_t>> found;
  pattern.find_all(s, found);
  if (found.empty()) return std::string(s);
  std::string out;
  size_t prev = 0;
  for (const auto& m : found) {
    out.append(s.substr(prev, m.first - prev));
    out += content;
    prev = m.second;
  }
  out.append(s.substr(prev));
  return out;
}

}  // namespace

// The normalizer steps in order on one stretch of text (valid UTF-8).
std::string BpeTokenizer::Impl::normalize(std::string_view text) const {
  std::string s(text);
  for (const NormStep& n : normalizer) {
    switch (n.kind) {
      case TextNormKind::kUnicode:
        s = unicode_normalize(n.form, s);
        break;
      case TextNormKind::kLowercase:
        s = lowercase(s);
        break;
      case TextNormKind::kStrip:
        s = strip(s, n.strip_left, n.strip_right);
        break;
      case TextNormKind::kReplace:
        s = replace_all(*n.pattern, n.content, s);
        break;
      case TextNormKind::kPrepend:
        if (!s.empty()) s.insert(0, n.content);
        break;
    }
  }
  return s;
}

// Initial symbols of a byte-level word: one per byte, through the byte -> id table (prefix / suffix
// already folded in); byte_fallback and unk as in initial_symbols_chars.
void BpeTokenizer::Impl::initial_symbols_bytes(std::string_view word, std::vector<int32_t>& ids) const {
  int32_t pending_unk = -1;  // an unk token not yet added (fuse_unk merges runs of unknown characters)
  for (size_t i = 0; i < word.size(); ++i) {
    const bool first = i == 0, last = i + 1 == word.size();
    const auto b = static_cast<unsigned char>(word[i]);
    const int32_t id = byte_ids[(first ? 1 : 0) + (last ? 2 : 0)][b];
    if (id >= 0) {
      if (pending_unk >= 0) ids.push_back(pending_unk), pending_unk = -1;
      ids.push_back(id);
      continue;
    }
    if (byte_fallback) {  // <0xNN> tokens for each byte of the symbol's text, if all exist
      const std::string s = (first ? "" : prefix) + byte_level().byte_to_char[b] + (last ? suffix : "");
      const size_t before = ids.size();
      bool all = true;
      for (unsigned char c : s) {
        const int32_t f = byte_fallback_ids[c];
        if (f < 0) {
          all = false;
          break;
        }
        ids.push_back(f);
      }
      if (all) continue;  // as HF: a pending unk stays pending across byte-fallback tokens
      ids.resize(before);
    }
    if (unk_id) {  // without an unk token HF drops the character
      if (pending_unk >= 0 && !fuse_unk) ids.push_back(pending_unk);
      pending_unk = *unk_id;
    }
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

// HF's BPE::merge_word start for sentencepiece-style BPE (no ByteLevel pre-tokenizer): one symbol per
// character (with continuing_subword_prefix unless first, end_of_word_suffix when last); a character not
// in the vocabulary becomes its <0xNN> byte tokens (byte_fallback, when all exist), else unk (runs fused
// with fuse_unk), else nothing.
void BpeTokenizer::Impl::initial_symbols_chars(std::string_view word, std::vector<int32_t>& ids) const {
  int32_t pending_unk = -1;
  std::string key;
  uint32_t cp = 0;
  for (size_t i = 0; i < word.size();) {
    int n = utf8_step(word, i, &cp);  // word is valid UTF-8
    if (n < 0) n = -n;
    const bool first = i == 0, last = i + n == word.size();
    key.clear();
    if (!first) key += prefix;
    key.append(word.substr(i, n));
    if (last) key += suffix;
    i += n;
    const int32_t found = vocab.find(key);
    if (found >= 0) {
      if (pending_unk >= 0) ids.push_back(pending_unk), pending_unk = -1;
      ids.push_back(found);
      continue;
    }
    if (byte_fallback) {
      const size_t before = ids.size();
      bool all = true;
      for (unsigned char c : key) {
        const int32_t f = byte_fallback_ids[c];
        if (f < 0) {
          all = false;
          break;
        }
        ids.push_back(f);
      }
      if (all) continue;
      ids.resize(before);
    }
    if (unk_id) {
      if (pending_unk >= 0 && !fuse_unk) ids.push_back(pending_unk);
      pending_unk = *unk_id;
    }
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

// HF's BPE::merge_word: initial symbols, then repeatedly apply the lowest-ranked merge, leftmost first,
// through a priority queue; stale queue entries are skipped.
void BpeTokenizer::Impl::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  if (byte_level_model) {
    initial_symbols_bytes(word, ids);
  } else {
    initial_symbols_chars(word, ids);
  }
  std::vector<Symbol> sym(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    sym[i] = {ids[i], static_cast<int32_t>(i) - 1, i + 1 < ids.size() ? static_cast<int32_t>(i + 1) : -1, true};
  }

  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto lookup = [&](int32_t a, int32_t b) { return merges.find(a, b); };
  for (size_t i = 0; i + 1 < sym.size(); ++i) {
    if (const Merge* m = lookup(sym[i].id, sym[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = sym[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    const Symbol right = sym[cur.next];
    const Merge* m = lookup(cur.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale entry
    sym[cur.next].alive = false;
    cur.id = top.new_id;
    cur.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const Merge* p = lookup(sym[cur.prev].id, cur.id)) queue.push({p->rank, cur.prev, p->new_id});
    }
    if (cur.next >= 0) {
      if (const Merge* n = lookup(cur.id, sym[cur.next].id)) queue.push({n->rank, top.pos, n->new_id});
    }
  }
  for (const Symbol& s : sym) {
    if (s.alive) out.push_back(s.id);
  }
}

// BPE of one pre-token (raw bytes): the whole word when ignore_merges finds it in the vocabulary, else
// merges.
void BpeTokenizer::Impl::bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    const int32_t id = byte_level_model ? vocab.find(bytes_to_byte_level(word)) : vocab.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWord;
  std::string key;
  if (cacheable) {
    key.assign(word);
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(key);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() < kMaxCacheEntries)
      cache.emplace(std::move(key), std::vector<int32_t>(out.begin() + start, out.end()));
  }
}

// Applies pre-tokenizer steps [step, end) to `piece` and calls `emit` for each final non-empty pre-token.
// `at_start`: the piece begins at offset 0 of the input text (Metaspace's prepend_scheme "first").
void BpeTokenizer::Impl::run_pre_steps(std::string_view piece, size_t step, bool at_start,
                                       const std::function<void(std::string_view)>& emit) const {
  if (piece.empty()) return;
  if (step == pre_steps.size()) {
    emit(piece);
    return;
  }
  const PreStep& ps = pre_steps[step];
  std::string with_space;
  if (ps.byte_level && ps.add_prefix_space && piece[0] != ' ') {
    with_space = " ";
    with_space.append(piece);
    piece = with_space;
  }
  if (ps.metaspace) {
    // HF's Metaspace: every ' ' becomes the replacement; the replacement is prepended unless the piece
    // already starts with it ("first": only to the piece at the start of the input); with split, the
    // piece is cut before each replacement (MergedWithNext).
    std::string r;
    r.reserve(piece.size() + ps.replacement.size());
    for (char c : piece) {
      if (c == ' ') {
        r += ps.replacement;
      } else {
        r += c;
      }
    }
    const bool prepend = ps.prepend_scheme == PrependScheme::kAlways ||
                         (ps.prepend_scheme == PrependScheme::kFirst && at_start);
    if (prepend && r.compare(0, ps.replacement.size(), ps.replacement) != 0) r.insert(0, ps.replacement);
    if (!ps.regex) {
      run_pre_steps(r, step + 1, at_start, emit);
      return;
    }
    with_space = std::move(r);
    piece = with_space;
  }
  if (!ps.regex) {
    run_pre_steps(piece, step + 1, at_start, emit);
    return;
  }
  std::vector<std::pair<size_t, size_t>> found;
  ps.regex->find_all(piece, found);
  // HF's Pattern::find_matches: the whole piece as (range, is_match) parts.
  struct Part {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Part> parts;
  size_t prev = 0;
  for (const auto& m : found) {
    if (prev != m.first) parts.push_back({prev, m.first, false});
    parts.push_back({m.first, m.second, true});
    prev = m.second;
  }
  if (prev != piece.size()) parts.push_back({prev, piece.size(), false});
  if (ps.invert) {
    for (Part& p : parts) p.is_match = !p.is_match;
  }
  // HF's NormalizedString::split: which parts become pre-tokens, and which are removed.
  std::vector<Part> kept;  // is_match here means "remove"
  switch (ps.behavior) {
    case SplitBehavior::kRemoved:
      kept = parts;
      break;
    case SplitBehavior::kIsolated:
      for (const Part& p : parts) kept.push_back({p.begin, p.end, false});
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !kept.empty()) {
          kept.back().end = p.end;
        } else {
          kept.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !kept.empty()) {
          kept.back().end = p.end;
        } else {
          kept.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back({it->begin, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
  for (const Part& p : kept) {
    if (!p.is_match && p.end > p.begin) {
      run_pre_steps(piece.substr(p.begin, p.end - p.begin), step + 1, at_start && p.begin == 0, emit);
    }
  }
}

// One pass of HF's AddedVocabulary::split_with_indices: leftmost-longest matches of this pass's tokens, with
// single_word / lstrip / rstrip. Appends (text, -1) for plain text and (content, id) for added tokens.
void BpeTokenizer::Impl::split_added_pass(int pass, std::string_view text,
                                          std::vector<std::pair<std::string_view, int32_t>>& out) const {
  const auto& by_byte = added_by_first_byte[pass];
  size_t start_offset = 0;  // end of the last accepted match
  size_t search = 0;        // where the matcher resumes (after the last match, accepted or not)
  while (search < text.size()) {
    // Leftmost-longest: the first position with any match, the longest token there.
    size_t start = text.size();
    const AddedToken* tok = nullptr;
    for (size_t p = search; p < text.size() && tok == nullptr; ++p) {
      for (int idx : by_byte[static_cast<unsigned char>(text[p])]) {
        const std::string& c = added[idx].pattern;
        if (text.compare(p, c.size(), c) == 0) {
          tok = &added[idx];
          start = p;
          break;
        }
      }
    }
    if (tok == nullptr) break;
    size_t stop = start + tok->pattern.size();
    search = stop;
    if (start < start_offset) continue;  // inside a previous token's rstrip whitespace
    if (tok->single_word) {
      // Word characters: letters, marks and numbers (an approximation of Rust's is_alphanumeric) and '_'.
      auto is_word = [](uint32_t cp) {
        if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) != 0 || cp == '_';
        static const Regex word_re(R"(^[\p{L}\p{M}\p{N}])", false, "built-in");
        std::string s;
        append_utf8(s, cp);
        std::vector<std::pair<size_t, size_t>> m;
        word_re.find_all(s, m);
        return !m.empty();
      };
      size_t at = 0;
      uint32_t cp = 0;
      const bool start_space = start == 0 || !is_word(last_code_point(text.substr(0, start), &at));
      const bool stop_space = stop == text.size() || (utf8_step(text, stop, &cp) > 0 && !is_word(cp));
      if (!start_space || !stop_space) continue;
    }
    if (tok->lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t at = 0;
        if (!is_white_space(last_code_point(text.substr(0, s), &at))) break;
        s = at;
      }
      start = s;
    }
    if (tok->rstrip) {
      uint32_t cp = 0;
      int n = 0;
      while (stop < text.size() && (n = utf8_step(text, stop, &cp)) > 0 && is_white_space(cp)) stop += n;
    }
    if (start > start_offset) out.emplace_back(text.substr(start_offset, start - start_offset), -1);
    out.emplace_back(text.substr(start, stop - start), tok->id);
    start_offset = stop;
  }
  if (start_offset < text.size()) out.emplace_back(text.substr(start_offset), -1);
}

// HF's AddedVocabulary::extract_and_normalize: normalized=false tokens are matched on the raw text; each
// stretch between them is normalized on its own, then normalized=true tokens are matched in it. Normalized
// text is kept in `storage` (a deque: its strings never move, so the views in `out` stay valid).
void BpeTokenizer::Impl::split_added(std::string_view text, std::deque<std::string>& storage,
                                     std::vector<std::pair<std::string_view, int32_t>>& out) const {
  std::vector<std::pair<std::string_view, int32_t>> first;
  split_added_pass(0, text, first);
  for (const auto& seg : first) {
    if (seg.second >= 0) {
      out.push_back(seg);
    } else if (normalizer.empty()) {
      split_added_pass(1, seg.first, out);
    } else {
      storage.push_back(normalize(seg.first));
      split_added_pass(1, storage.back(), out);
    }
  }
}

// -----------------------------------------------------------------------------------------------------------
// BpeTokenizer

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::~BpeTokenizer() = default;

std::vector<int64_t> BpeTokenizer::encode(const std::string& text, bool add_special) const {
  const Impl& m = *impl_;
  const std::string clean = sanitize_utf8(text);
  std::deque<std::string> storage;
  std::vector<std::pair<std::string_view, int32_t>> segments;
  m.split_added(clean, storage, segments);
  std::vector<int32_t> ids;
  ids.reserve(clean.size() / 3 + 4);
  const std::function<void(std::string_view)> emit = [&](std::string_view word) { m.bpe_word(word, ids); };
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].second >= 0) {
      ids.push_back(segments[i].second);
    } else {
      m.run_pre_steps(segments[i].first, 0, i == 0, emit);
    }
  }
  if (add_special) {
    for (const Template& t : m.templates) {
      std::vector<int32_t> wrapped(t.before);
      wrapped.insert(wrapped.end(), ids.begin(), ids.end());
      wrapped.insert(wrapped.end(), t.after.begin(), t.after.end());
      ids.swap(wrapped);
    }
  }
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& text) const {
  const Impl& m = *impl_;
  const std::string clean = sanitize_utf8(text);
  std::deque<std::string> storage;
  std::vector<std::pair<std::string_view, int32_t>> segments;
  m.split_added(clean, storage, segments);
  std::vector<std::string> out;
  const std::function<void(std::string_view)> emit = [&](std::string_view w) { out.emplace_back(w); };
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].second < 0) m.run_pre_steps(segments[i].first, 0, i == 0, emit);
  }
  return out;
}

namespace {

// HF's decoders, each on the whole list of token strings (Decoder::decode_chain).
void apply_decoder(const DecodeStep& d, std::vector<std::string>& toks) {
  switch (d.kind) {
    case DecodeKind::kByteLevel: {  // all tokens' bytes, then one lossy UTF-8 string
      std::string bytes;
      for (const std::string& t : toks) bytes += byte_level_to_bytes(t);
      toks.assign(1, sanitize_utf8(bytes));
      break;
    }
    case DecodeKind::kReplace:
      for (std::string& t : toks) t = replace_all(*d.pattern, d.content, t);
      break;
    case DecodeKind::kByteFallback: {  // runs of <0xNN> become their bytes, or one U+FFFD per byte
      std::vector<std::string> out;
      std::string run;
      size_t n_run = 0;
      auto flush = [&] {
        if (n_run == 0) return;
        if (is_valid_utf8(run)) {
          out.push_back(run);
        } else {
          for (size_t k = 0; k < n_run; ++k) out.emplace_back("\xEF\xBF\xBD");
        }
        run.clear();
        n_run = 0;
      };
      for (std::string& t : toks) {
        const bool is_byte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
                             std::isxdigit(static_cast<unsigned char>(t[3])) &&
                             std::isxdigit(static_cast<unsigned char>(t[4]));
        if (is_byte) {
          run += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
          ++n_run;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      toks.swap(out);
      break;
    }
    case DecodeKind::kFuse: {
      std::string all;
      for (const std::string& t : toks) all += t;
      toks.assign(1, all);
      break;
    }
    case DecodeKind::kStrip:
      for (std::string& t : toks) {
        size_t b = 0, e = t.size();
        for (int k = 0; k < d.start && t.compare(b, d.content.size(), d.content) == 0 && b < e; ++k)
          b += d.content.size();
        for (int k = 0; k < d.stop && e >= b + d.content.size() &&
                        t.compare(e - d.content.size(), d.content.size(), d.content) == 0;
             ++k)
          e -= d.content.size();
        t = t.substr(b, e - b);
      }
      break;
    case DecodeKind::kMetaspace:
      for (size_t i = 0; i < toks.size(); ++i) {
        std::string r;
        for (size_t k = 0; k < toks[i].size();) {
          if (toks[i].compare(k, d.content.size(), d.content) == 0) {
            r += ' ';
            k += d.content.size();
          } else {
            r += toks[i][k++];
          }
        }
        if (i == 0 && d.prepend && !r.empty() && r[0] == ' ') r.erase(0, 1);
        toks[i] = std::move(r);
      }
      break;
  }
}

}  // namespace

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  const Impl& m = *impl_;
  std::vector<std::string> toks;
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(m.pieces.size()) || !m.present[id] || m.special[id]) continue;
    toks.push_back(m.pieces[id]);
  }
  if (!m.has_decoder) {  // HF without a decoder: tokens joined by spaces
    std::string out;
    for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
    return sanitize_utf8(out);
  }
  for (const DecodeStep& d : m.decoder) apply_decoder(d, toks);
  std::string out;
  for (const std::string& t : toks) out += t;
  return sanitize_utf8(out);
}

std::string BpeTokenizer::piece(int64_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= static_cast<int64_t>(m.pieces.size()) || !m.present[id]) {
    throw InputError("token id " + std::to_string(id) + " is not in the vocabulary of " + m.source +
                     " (size " + std::to_string(m.pieces.size()) + ")");
  }
  return m.pieces[id];
}

std::string BpeTokenizer::token_text(int64_t id) const {
  const std::string p = piece(id);
  for (const AddedToken& t : impl_->added) {
    if (t.id == id) return escape_invalid_utf8(t.pattern);
  }
  if (impl_->byte_level_model) return escape_invalid_utf8(byte_level_to_bytes(p));
  // Sentencepiece-style: U+2581 reads as a space, <0xNN> as its byte.
  if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && std::isxdigit(static_cast<unsigned char>(p[3])) &&
      std::isxdigit(static_cast<unsigned char>(p[4]))) {
    return escape_invalid_utf8(std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16))));
  }
  std::string out;
  for (size_t k = 0; k < p.size();) {
    if (p.compare(k, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      k += 3;
    } else {
      out += p[k++];
    }
  }
  return escape_invalid_utf8(out);
}

std::string BpeTokenizer::special_rule() const { return impl_->special_rule; }

int64_t BpeTokenizer::vocab_size() const { return static_cast<int64_t>(impl_->pieces.size()); }

std::optional<int64_t> BpeTokenizer::bos_id() const {
  if (impl_->bos) return *impl_->bos;
  return std::nullopt;
}

std::optional<int64_t> BpeTokenizer::eos_id() const {
  if (impl_->eos) return *impl_->eos;
  return std::nullopt;
}

// -----------------------------------------------------------------------------------------------------------
// Loading

namespace {

using Impl = BpeTokenizer::Impl;

bool has_byte_level(const json& pre) {
  if (!pre.is_object()) return false;
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel") return true;
  if (type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
    for (const json& p : pre["pretokenizers"]) {
      if (has_byte_level(p)) return true;
    }
  }
  return false;
}

void parse_pre_tokenizer(const json& p, const std::string& where, std::vector<PreStep>& steps) {
  if (!p.is_object()) throw ModelError(where + ": pre_tokenizer must be an object");
  const std::string type = json_string(p, "type", where);
  if (type == "Sequence") {
    if (!p.contains("pretokenizers") || !p["pretokenizers"].is_array()) {
      throw ModelError(where + ": Sequence pre_tokenizer without a \"pretokenizers\" list");
    }
    for (const json& q : p["pretokenizers"]) parse_pre_tokenizer(q, where, steps);
  } else if (type == "ByteLevel") {
    PreStep s;
    s.byte_level = true;
    s.add_prefix_space = json_bool(p, "add_prefix_space", true, where + ": ByteLevel");
    if (json_bool(p, "use_regex", true, where + ": ByteLevel")) {
      s.regex = std::make_shared<Regex>(kGpt2Pattern, false, where);
    }
    steps.push_back(std::move(s));
  } else if (type == "Split") {
    PreStep s;
    const json pattern = p.value("pattern", json());
    if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
      s.regex = std::make_shared<Regex>(pattern["Regex"].get<std::string>(), false, where + ": Split");
    } else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
      s.regex = std::make_shared<Regex>(pattern["String"].get<std::string>(), true, where + ": Split");
    } else {
      throw ModelError(where + ": Split pre_tokenizer needs a pattern {\"Regex\": ...} or {\"String\": ...}");
    }
    const std::string behavior = json_string(p, "behavior", where + ": Split");
    if (behavior == "Removed") {
      s.behavior = SplitBehavior::kRemoved;
    } else if (behavior == "Isolated") {
      s.behavior = SplitBehavior::kIsolated;
    } else if (behavior == "MergedWithPrevious") {
      s.behavior = SplitBehavior::kMergedWithPrevious;
    } else if (behavior == "MergedWithNext") {
      s.behavior = SplitBehavior::kMergedWithNext;
    } else if (behavior == "Contiguous") {
      s.behavior = SplitBehavior::kContiguous;
    } else {
      throw ModelError(where + ": unknown Split behavior '" + behavior + "'");
    }
    s.invert = json_bool(p, "invert", false, where + ": Split");
    steps.push_back(std::move(s));
  } else if (type == "Digits") {
    // HF splits on char::is_numeric (\p{N}): one part per digit, or runs of digits.
    PreStep s;
    const bool individual = json_bool(p, "individual_digits", false, where + ": Digits");
    s.regex = std::make_shared<Regex>(individual ? R"(\p{N})" : R"(\p{N}+)", false, where + ": Digits");
    steps.push_back(std::move(s));
  } else if (type == "Metaspace") {
    const std::string w = where + ": Metaspace";
    PreStep s;
    s.metaspace = true;
    s.replacement = p.contains("replacement") ? json_string(p, "replacement", w) : "\xE2\x96\x81";
    if (s.replacement.empty() || !is_valid_utf8(s.replacement)) throw ModelError(w + ": bad replacement");
    if (p.contains("prepend_scheme")) {
      const std::string scheme = json_string(p, "prepend_scheme", w);
      if (scheme == "always") {
        s.prepend_scheme = PrependScheme::kAlways;
      } else if (scheme == "first") {
        s.prepend_scheme = PrependScheme::kFirst;
      } else if (scheme == "never") {
        s.prepend_scheme = PrependScheme::kNever;
      } else {
        throw ModelError(w + ": unknown prepend_scheme '" + scheme + "'");
      }
    } else {  // tokenizers < 0.14 wrote add_prefix_space
      s.prepend_scheme = json_bool(p, "add_prefix_space", true, w) ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    if (json_bool(p, "split", true, w)) {
      s.regex = std::make_shared<Regex>(s.replacement, true, w);
      s.behavior = SplitBehavior::kMergedWithNext;
    }
    steps.push_back(std::move(s));
  } else if (type == "Whitespace") {  // HF: \w+|[^\w\s]+, the rest removed
    PreStep s;
    s.regex = std::make_shared<Regex>(R"(\w+|[^\w\s]+)", false, where + ": Whitespace");
    s.behavior = SplitBehavior::kRemoved;
    s.invert = true;
    steps.push_back(std::move(s));
  } else if (type == "WhitespaceSplit") {  // HF: split on char::is_whitespace, removed
    PreStep s;
    s.regex = std::make_shared<Regex>(R"(\s)", false, where + ": WhitespaceSplit");
    s.behavior = SplitBehavior::kRemoved;
    steps.push_back(std::move(s));
  } else if (type == "Punctuation") {  // HF: is_ascii_punctuation or Unicode P*, one character each
    PreStep s;
    const std::string behavior = p.value("behavior", std::string("Isolated"));
    if (behavior != "Isolated") throw ModelError(where + ": Punctuation behavior '" + behavior + "' is not supported");
    s.regex = std::make_shared<Regex>(R"([\p{P}!-/:-@\[-`{-~])", false, where + ": Punctuation");
    steps.push_back(std::move(s));
  } else {
    throw ModelError(where + ": unsupported pre_tokenizer type '" + type +
                     "' (supported: ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit, "
                     "Punctuation, Sequence)");
  }
}

void parse_normalizer(const json& n, const std::string& where, std::vector<NormStep>& steps) {
  if (n.is_null()) return;
  if (!n.is_object()) throw ModelError(where + ": normalizer must be an object or null");
  const std::string type = json_string(n, "type", where + ": normalizer");
  const std::string w = where + ": " + type + " normalizer";
  NormStep s;
  UErrorCode err = U_ZERO_ERROR;
  if (type == "Sequence") {
    if (!n.contains("normalizers") || !n["normalizers"].is_array()) {
      throw ModelError(where + ": Sequence normalizer without a \"normalizers\" list");
    }
    for (const json& q : n["normalizers"]) parse_normalizer(q, where, steps);
    return;
  } else if (type == "NFC") {
    s.form = unorm2_getNFCInstance(&err);
  } else if (type == "NFD") {
    s.form = unorm2_getNFDInstance(&err);
  } else if (type == "NFKC") {
    s.form = unorm2_getNFKCInstance(&err);
  } else if (type == "NFKD") {
    s.form = unorm2_getNFKDInstance(&err);
  } else if (type == "Lowercase") {
    s.kind = TextNormKind::kLowercase;
  } else if (type == "Strip") {
    s.kind = TextNormKind::kStrip;
    s.strip_left = json_bool(n, "strip_left", true, w);
    s.strip_right = json_bool(n, "strip_right", true, w);
  } else if (type == "Replace") {
    s.kind = TextNormKind::kReplace;
    const json pattern = n.value("pattern", json());
    if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
      s.pattern = std::make_shared<Regex>(pattern["Regex"].get<std::string>(), false, w);
    } else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string() &&
               !pattern["String"].get<std::string>().empty()) {
      s.pattern = std::make_shared<Regex>(pattern["String"].get<std::string>(), true, w);
    } else {
      throw ModelError(w + ": needs a pattern {\"Regex\": ...} or a non-empty {\"String\": ...}");
    }
    s.content = json_string(n, "content", w);
  } else if (type == "Prepend") {
    s.kind = TextNormKind::kPrepend;
    s.content = json_string(n, "prepend", w);
  } else {
    throw ModelError(where + ": unsupported normalizer '" + type +
                     "' (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace, Prepend, Sequence)");
  }
  if (U_FAILURE(err)) throw ModelError(w + ": ICU cannot load it: " + u_errorName(err));
  steps.push_back(std::move(s));
}

void parse_post_processor(const json& p, const std::string& where, Impl& m) {
  if (p.is_null()) return;
  if (!p.is_object()) throw ModelError(where + ": post_processor must be an object or null");
  const std::string type = json_string(p, "type", where + ": post_processor");
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type == "Sequence") {
    if (!p.contains("processors") || !p["processors"].is_array()) {
      throw ModelError(where + ": Sequence post_processor without a \"processors\" list");
    }
    for (const json& q : p["processors"]) parse_post_processor(q, where, m);
    return;
  }
  if (type == "TemplateProcessing") {
    const std::string w = where + ": TemplateProcessing";
    if (!p.contains("single") || !p["single"].is_array())
      throw ModelError(w + ": missing \"single\" template");
    const json specials = p.value("special_tokens", json::object());
    Template t;
    bool seen_sequence = false;
    for (const json& item : p["single"]) {
      if (item.contains("Sequence")) {
        if (item["Sequence"].value("id", "A") == "A") seen_sequence = true;
        continue;
      }
      if (!item.contains("SpecialToken")) throw ModelError(w + ": unknown template item " + item.dump());
      const std::string name = json_string(item["SpecialToken"], "id", w);
      if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
        throw ModelError(w + ": special token '" + name + "' is not in \"special_tokens\"");
      }
      for (const json& id : specials[name]["ids"])
        (seen_sequence ? t.after : t.before).push_back(json_id(id, w));
    }
    m.templates.push_back(std::move(t));
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const std::string w = where + ": " + type;
    auto pair_id = [&](const char* key) {
      if (!p.contains(key) || !p[key].is_array() || p[key].size() != 2) {
        throw ModelError(w + ": \"" + key + "\" must be [token, id]");
      }
      return json_id(p[key][1], w);
    };
    m.templates.push_back(Template{{pair_id("cls")}, {pair_id("sep")}});
    return;
  }
  throw ModelError(
      where + ": unsupported post_processor type '" + type +
      "' (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
}

void parse_decoder_step(const json& d, const std::string& where, std::vector<DecodeStep>& steps) {
  if (!d.is_object()) throw ModelError(where + ": decoder must be an object");
  const std::string type = json_string(d, "type", where + ": decoder");
  const std::string w = where + ": " + type + " decoder";
  DecodeStep s;
  if (type == "Sequence") {
    if (!d.contains("decoders") || !d["decoders"].is_array())
      throw ModelError(w + ": no \"decoders\" list");
    for (const json& q : d["decoders"]) parse_decoder_step(q, where, steps);
    return;
  } else if (type == "ByteLevel") {
    s.kind = DecodeKind::kByteLevel;
  } else if (type == "Replace") {
    s.kind = DecodeKind::kReplace;
    const json pattern = d.value("pattern", json());
    if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
      s.pattern = std::make_shared<Regex>(pattern["Regex"].get<std::string>(), false, w);
    } else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string() &&
               !pattern["String"].get<std::string>().empty()) {
      s.pattern = std::make_shared<Regex>(pattern["String"].get<std::string>(), true, w);
    } else {
      throw ModelError(w + ": needs a pattern {\"Regex\": ...} or a non-empty {\"String\": ...}");
    }
    s.content = json_string(d, "content", w);
  } else if (type == "ByteFallback") {
    s.kind = DecodeKind::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = DecodeKind::kFuse;
  } else if (type == "Strip") {
    s.kind = DecodeKind::kStrip;
    s.content = json_string(d, "content", w);
    auto count = [&](const char* key) {
      if (!d.contains(key) || !d[key].is_number_integer() || d[key].get<int64_t>() < 0 ||
          d[key].get<int64_t>() > 1024)
        throw ModelError(w + ": \"" + key + "\" must be a small non-negative integer");
      return static_cast<int>(d[key].get<int64_t>());
    };
    s.start = count("start");
    s.stop = count("stop");
  } else if (type == "Metaspace") {
    s.kind = DecodeKind::kMetaspace;
    s.content = d.contains("replacement") ? json_string(d, "replacement", w) : "\xE2\x96\x81";
    if (s.content.empty()) throw ModelError(w + ": empty replacement");
    if (d.contains("prepend_scheme")) {
      s.prepend = json_string(d, "prepend_scheme", w) != "never";
    } else {
      s.prepend = json_bool(d, "add_prefix_space", true, w);
    }
  } else {
    throw ModelError(where + ": unsupported decoder type '" + type +
                     "' (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
  }
  steps.push_back(std::move(s));
}

void parse_decoder(const json& d, const std::string& where, Impl& m) {
  if (d.is_null()) {
    m.has_decoder = false;
    return;
  }
  parse_decoder_step(d, where, m.decoder);
}

// Resolves merges to ids: merge i joins (left, right), rank i, into left + right less right's
// continuing_subword_prefix. `where(i)` names merge i in errors. The lookups land on random slots of
// tables larger than the cache, so the hashes are computed first and each slot is prefetched kAhead merges
// before it is needed: this halved Gemma 3's load time.
void add_merges(Impl& m, const MergeTexts& t, const std::function<std::string(size_t)>& where) {
  constexpr size_t kAhead = 16;
  const size_t n = t.pairs.size();
  if (n > static_cast<size_t>(INT32_MAX)) throw ModelError(where(0) + ": too many merges");
  auto merged_right = [&](std::string_view right) {
    if (!m.prefix.empty() && right.substr(0, m.prefix.size()) == m.prefix) right.remove_prefix(m.prefix.size());
    return right;
  };
  struct Hashes {
    uint32_t left, right, merged;
  };
  std::vector<Hashes> hashes(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view a = t.left(t.pairs[i]), b = t.right(t.pairs[i]);
    hashes[i] = {Vocab::hash(a), Vocab::hash(b), Vocab::hash(a, merged_right(b))};
  }
  struct Ids {
    int32_t left, right, merged;
  };
  std::vector<Ids> ids(n);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) {
      const Hashes& h = hashes[i + kAhead];
      m.vocab.prefetch(h.left);
      m.vocab.prefetch(h.right);
      m.vocab.prefetch(h.merged);
    }
    const std::string_view a = t.left(t.pairs[i]), b = t.right(t.pairs[i]);
    ids[i] = {m.vocab.find_hashed(hashes[i].left, a, {}), m.vocab.find_hashed(hashes[i].right, b, {}),
              m.vocab.find_hashed(hashes[i].merged, a, merged_right(b))};
    const Ids& r = ids[i];
    if (r.left < 0 || r.right < 0 || r.merged < 0) {
      const std::string token = r.left < 0    ? std::string(a)
                                : r.right < 0 ? std::string(b)
                                              : std::string(a) + std::string(merged_right(b));
      throw ModelError(where(i) + ": merge token '" + token + "' is not in the vocabulary");
    }
  }
  m.merges.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) m.merges.prefetch(ids[i + kAhead].left, ids[i + kAhead].right);
    m.merges.set(ids[i].left, ids[i].right, Merge{static_cast<int32_t>(i), ids[i].merged});
  }
}

// Indexes the vocabulary as read. Slots are random places in a table larger than the cache, so each one is
// prefetched kAhead entries before it is written.
void add_vocab(Impl& m, const VocabEntries& v) {
  constexpr size_t kAhead = 16;
  m.vocab.reserve(v.entries.size());
  for (size_t i = 0; i < v.entries.size(); ++i) {
    if (i + kAhead < v.entries.size()) m.vocab.prefetch(v.entries[i + kAhead].hash);
    const VocabEntries::Entry& e = v.entries[i];
    m.vocab.set_hashed(e.hash, v.piece(e), e.id);
  }
}

AddedToken parse_added_token(const json& t, const std::string& where) {
  if (!t.is_object()) throw ModelError(where + ": added token must be an object");
  AddedToken a;
  a.content = json_string(t, "content", where);
  a.id = t.contains("id") ? json_id(t["id"], where) : 0;
  a.special = json_bool(t, "special", false, where);
  a.single_word = json_bool(t, "single_word", false, where);
  a.lstrip = json_bool(t, "lstrip", false, where);
  a.rstrip = json_bool(t, "rstrip", false, where);
  a.normalized = json_bool(t, "normalized", !a.special, where);
  return a;
}

void set_bos_eos(Impl& m, const json& config) {
  if (auto s = config_token(config, "bos_token")) m.bos = m.token_to_id(*s);
  if (auto s = config_token(config, "eos_token")) m.eos = m.token_to_id(*s);
  if (!m.bos && !m.templates.empty() && !m.templates.front().before.empty())
    m.bos = m.templates.front().before[0];
  if (!m.eos && !m.templates.empty() && !m.templates.front().after.empty())
    m.eos = m.templates.front().after.back();
  if (!m.eos) {
    for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>"}) {
      auto id = m.token_to_id(name);
      if (id && m.special[*id]) {
        m.eos = id;
        break;
      }
    }
  }
}

json read_config(const std::filesystem::path& dir) {
  const auto path = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(path)) return json::object();
  json c = parse_json_file(path);
  if (!c.is_object()) throw ModelError(path.string() + ": expected a JSON object");
  return c;
}

// Whether transformers 5.23 would call this tokenizer.json byte-level: it searches the file for
// "ByteLevel" (TokenizersBackend._tokenizer_json_has_byte_level); the components are where it occurs.
bool mentions_byte_level(const json& j) {
  for (const char* key : {"normalizer", "pre_tokenizer", "post_processor", "decoder"}) {
    if (j.contains(key) && j[key].dump().find("\"ByteLevel\"") != std::string::npos) return true;
  }
  return false;
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& dir) {
  const auto path = dir / "tokenizer.json";
  const std::string where = path.string();
  // The DOM holds everything but model.vocab and model.merges, which are read in place below.
  const std::string text = read_json_text(path);
  const TokenizerJsonParts parts = split_tokenizer_json(text, where);
  const json& j = parts.doc;
  if (!j.is_object()) throw ModelError(where + ": expected a JSON object at the top level");
  if (!j.contains("model") || !j["model"].is_object()) throw ModelError(where + ": no \"model\" object");
  const json& model = j["model"];
  std::string type = model.value("type", "");
  if (type.empty() && parts.has_merges) type = "BPE";  // HF infers the type when it is left out
  if (type == "Unigram" || type == "WordPiece" || type == "WordLevel") {
    if (std::filesystem::exists(dir / "tokenizer.model")) return nullptr;  // sentencepiece's job
    throw ModelError(where + ": model type '" + type + "' is not supported (only BPE)");
  }
  if (type != "BPE") {
    throw ModelError(where + ": unknown model type '" + type +
                     "' (expected BPE, Unigram, WordPiece or WordLevel)");
  }
  const json config = read_config(dir);
  const bool byte_level = mentions_byte_level(j);
  // A sentencepiece-style tokenizer.json next to a tokenizer.model: the sentencepiece loader, which
  // reproduces sentencepiece itself (the path that was checked against Llama 2).
  if (!has_byte_level(j.value("pre_tokenizer", json())) && std::filesystem::exists(dir / "tokenizer.model")) {
    return nullptr;
  }

  // transformers 5.23 loads most tokenizer.json files as they are (TokenizersBackend), but classes with
  // their own __init__ rebuild the pipeline around the file's vocabulary and merges and keep only its
  // post-processor. LlamaTokenizer (unless the file is byte-level, then TokenizersBackend) and
  // GemmaTokenizer are the sentencepiece-style ones: see models/{llama,gemma}/tokenization_*.py.
  std::string cls = config.value("tokenizer_class", "");
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  const bool llama_class = cls == "LlamaTokenizer" && !byte_level;
  const bool gemma_class = cls == "GemmaTokenizer";
  const bool gpt2_class = cls == "GPT2Tokenizer";

  auto m = std::make_unique<Impl>();
  m->source = where;
  if (!parts.vocab) {
    throw ModelError(where + (parts.vocab_text.empty() ? ": model.vocab is missing"
                                                       : ": model.vocab: vocabulary must be a JSON object {token: id}"));
  }
  add_vocab(*m, *parts.vocab);
  if (!parts.merges) throw ModelError(where + ": model.merges is missing or not a list");
  auto opt_string = [&](const char* key) {
    return model.contains(key) && model[key].is_string() ? model[key].get<std::string>() : std::string();
  };
  std::string unk;
  if (llama_class || gemma_class) {  // BPE(vocab, merges, fuse_unk=True, byte_fallback=True[, unk_token])
    m->fuse_unk = m->byte_fallback = true;
    if (gemma_class) unk = config_token(config, "unk_token").value_or("<unk>");
  } else if (gpt2_class) {  // BPE(vocab, merges, continuing_subword_prefix="", end_of_word_suffix="")
  } else {
    m->prefix = opt_string("continuing_subword_prefix");
    m->suffix = opt_string("end_of_word_suffix");
    unk = opt_string("unk_token");
    m->fuse_unk = json_bool(model, "fuse_unk", false, where + ": model");
    m->byte_fallback = json_bool(model, "byte_fallback", false, where + ": model");
    m->ignore_merges = json_bool(model, "ignore_merges", false, where + ": model");
    if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0.0) {
      throw ModelError(where + ": BPE dropout is not supported (it makes encoding random)");
    }
  }
  if (!unk.empty()) {
    const int32_t id = m->vocab.find(unk);
    if (id < 0) throw ModelError(where + ": unk_token '" + unk + "' is not in the vocabulary");
    m->unk_id = id;
  }
  add_merges(*m, *parts.merges, [&](size_t i) { return where + ": model.merges[" + std::to_string(i) + "]"; });

  if (llama_class) {
    // LlamaTokenizer: no normalizer; Metaspace(prepend_scheme from add_prefix_space and legacy,
    // split=False); decoder Replace, ByteFallback, Fuse (+ Strip of one leading space).
    const bool add_prefix_space = json_bool(config, "add_prefix_space", true, "tokenizer_config.json");
    const bool legacy = json_bool(config, "legacy", false, "tokenizer_config.json");
    json pre{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"split", false},
             {"prepend_scheme", add_prefix_space ? (legacy ? "always" : "first") : "never"}};
    json dec{{"type", "Sequence"},
             {"decoders",
              {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
               {{"type", "ByteFallback"}},
               {{"type", "Fuse"}}}}};
    if (add_prefix_space) dec["decoders"].push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    parse_pre_tokenizer(pre, where + " (as LlamaTokenizer)", m->pre_steps);
    parse_decoder(dec, where + " (as LlamaTokenizer)", *m);
  } else if (gemma_class) {
    // GemmaTokenizer: Replace(" ", "\u2581"); Split(" ", merged_with_previous); Replace, ByteFallback, Fuse.
    json norm{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
    json pre{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}, {"invert", false}};
    json dec{{"type", "Sequence"},
             {"decoders",
              {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
               {{"type", "ByteFallback"}},
               {{"type", "Fuse"}}}}};
    parse_normalizer(norm, where + " (as GemmaTokenizer)", m->normalizer);
    parse_pre_tokenizer(pre, where + " (as GemmaTokenizer)", m->pre_steps);
    parse_decoder(dec, where + " (as GemmaTokenizer)", *m);
  } else if (gpt2_class) {
    // GPT2Tokenizer: no normalizer; ByteLevel(add_prefix_space from the config) with GPT-2's regex, even
    // where the file has another split pattern (GPT-4o's); ByteLevel decoder.
    json pre{{"type", "ByteLevel"},
             {"add_prefix_space", json_bool(config, "add_prefix_space", false, "tokenizer_config.json")}};
    parse_pre_tokenizer(pre, where + " (as GPT2Tokenizer)", m->pre_steps);
    parse_decoder(json{{"type", "ByteLevel"}}, where + " (as GPT2Tokenizer)", *m);
  } else {
    parse_normalizer(j.value("normalizer", json()), where, m->normalizer);
    const json pre = j.value("pre_tokenizer", json());
    if (!pre.is_null()) parse_pre_tokenizer(pre, where, m->pre_steps);
    parse_decoder(j.value("decoder", json()), where, *m);
  }
  m->byte_level_model = false;
  for (size_t i = 0; i < m->pre_steps.size(); ++i) {
    if (!m->pre_steps[i].byte_level) continue;
    if (i + 1 != m->pre_steps.size()) {
      throw ModelError(where +
                       ": unsupported pre_tokenizer: ByteLevel must be the last step of the Sequence");
    }
    m->byte_level_model = true;
  }
  parse_post_processor(j.value("post_processor", json()), where, *m);
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) throw ModelError(where + ": added_tokens must be a list");
    for (const json& t : j["added_tokens"])
      m->added.push_back(parse_added_token(t, where + ": added_tokens"));
  }
  // "truncation" and "padding" are not read: transformers turns them off for a plain tokenizer(text).
  // transformers adds the config's named special tokens (and the class defaults) as special added tokens:
  // decode(skip_special_tokens=True) drops them even where tokenizer.json says special=false (Gemma's <mask>).
  std::vector<std::string> named;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token", "mask_token", "cls_token", "sep_token"}) {
    if (auto t = config_token(config, key)) named.push_back(*t);
  }
  for (const char* key : {"additional_special_tokens", "extra_special_tokens"}) {
    if (!config.contains(key)) continue;
    const json& list = config[key];
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (it->is_string()) named.push_back(it->get<std::string>());
    }
  }
  if (gemma_class) {
    for (const char* t : {"<bos>", "<eos>", "<unk>", "<pad>", "<mask>"}) named.push_back(t);
  }
  for (const std::string& name : named) {
    auto added = std::find_if(m->added.begin(), m->added.end(), [&](const AddedToken& t) { return t.content == name; });
    if (added != m->added.end()) {
      added->special = true;
      continue;
    }
    const int32_t id = m->vocab.find(name);
    if (id < 0) continue;
    AddedToken t;
    t.content = name;
    t.id = id;
    t.special = true;
    m->added.push_back(t);
  }
  m->finish(where);

  // transformers 5.23 drops add_bos_token / add_eos_token from tokenizer_config.json whenever a
  // tokenizer.json is present (PreTrainedTokenizerBase._from_pretrained): the file's post-processor alone
  // decides. A null post-processor becomes "$A" (add_bos_token then defaults to False): nothing added.
  const std::string as = llama_class   ? "LlamaTokenizer"
                         : gemma_class ? "GemmaTokenizer"
                         : gpt2_class  ? "GPT2Tokenizer"
                                       : "TokenizersBackend";
  m->special_rule = "tokenizer.json post_processor (" +
                    (j.contains("post_processor") && j["post_processor"].is_object()
                         ? j["post_processor"].value("type", std::string("?"))
                         : std::string("none")) +
                    ") as transformers 5.23 " + as + "; tokenizer_config.json add_bos_token/add_eos_token ignored";
  set_bos_eos(*m, config);
  return std::make_unique<BpeTokenizer>(std::move(m));
}

std::unique_ptr<Tokenizer> load_vocab_merges(const std::filesystem::path& dir) {
  const auto vocab_path = dir / "vocab.json", merges_path = dir / "merges.txt";
  auto m = std::make_unique<Impl>();
  m->source = vocab_path.string() + " + merges.txt";
  const json config = read_config(dir);
  {
    const std::string text = read_json_text(vocab_path);
    JsonScanner sc(text, vocab_path.string());
    if (sc.peek() != '{') throw ModelError(vocab_path.string() + ": vocabulary must be a JSON object {token: id}");
    add_vocab(*m, read_vocab_object(sc, vocab_path.string()));
    if (!sc.at_end()) sc.fail("text after the vocabulary");
  }

  std::istringstream lines(read_text_file(merges_path));
  std::string line;
  MergeTexts t;
  std::vector<int> line_nos;
  for (int line_no = 1; std::getline(lines, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t from = t.bytes.size();
    t.bytes += line;
    if (!t.add_spaced(from)) {
      throw ModelError(merges_path.string() + ":" + std::to_string(line_no) +
                       ": expected two tokens separated by one space, got '" + line + "'");
    }
    line_nos.push_back(line_no);
  }
  add_merges(*m, t, [&](size_t i) { return merges_path.string() + ":" + std::to_string(line_nos[i]); });
  const size_t rank = t.pairs.size();
  if (rank == 0) throw ModelError(merges_path.string() + ": no merges");

  // GPT2TokenizerFast: ByteLevel pre-tokenizer (add_prefix_space from the config), ByteLevel decoder.
  m->decoder.push_back(DecodeStep{});
  m->special_rule = "GPT2Tokenizer (vocab.json + merges.txt): BOS only with add_bos_token";
  PreStep s;
  s.byte_level = true;
  s.add_prefix_space = json_bool(config, "add_prefix_space", false, "tokenizer_config.json");
  s.regex = std::make_shared<Regex>(kGpt2Pattern, false, m->source);
  m->pre_steps.push_back(std::move(s));

  // Special tokens: the config's added_tokens_decoder, then bos/eos/unk/pad (GPT-2 default "<|endoftext|>").
  if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
    for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
      AddedToken t = parse_added_token(it.value(), "tokenizer_config.json: added_tokens_decoder");
      try {
        t.id = std::stoi(it.key());
      } catch (const std::exception&) {
        throw ModelError("tokenizer_config.json: added_tokens_decoder key '" + it.key() + "' is not an id");
      }
      m->added.push_back(t);
    }
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    std::optional<std::string> name = config_token(config, key);
    if (!config.contains(key) && key != std::string("pad_token")) name = "<|endoftext|>";
    if (!name) continue;
    const bool known = std::any_of(m->added.begin(), m->added.end(),
                                   [&](const AddedToken& t) { return t.content == *name; });
    const int32_t id = m->vocab.find(*name);
    if (known || id < 0) continue;
    AddedToken t;
    t.content = *name;
    t.id = id;
    t.special = true;
    m->added.push_back(t);
  }
  m->finish(m->source);
  // GPT2Tokenizer's bos/eos default to "<|endoftext|>"; an explicit null in the config means none.
  for (const char* key : {"bos_token", "eos_token"}) {
    std::optional<std::string> name = config_token(config, key);
    if (!config.contains(key)) name = "<|endoftext|>";
    (key == std::string("bos_token") ? m->bos : m->eos) = name ? m->token_to_id(*name) : std::nullopt;
  }
  if (json_bool(config, "add_bos_token", false, "tokenizer_config.json") && m->bos) {
    m->templates.push_back(Template{{*m->bos}, {}});
  }
  return std::make_unique<BpeTokenizer>(std::move(m));
}

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::filesystem::path& model_dir) {
  if (std::filesystem::exists(model_dir / "tokenizer.json")) return load_tokenizer_json(model_dir);
  const bool has_vocab = std::filesystem::exists(model_dir / "vocab.json");
  const bool has_merges = std::filesystem::exists(model_dir / "merges.txt");
  if (has_vocab && has_merges) return load_vocab_merges(model_dir);
  if (has_vocab != has_merges && !std::filesystem::exists(model_dir / "tokenizer.model")) {
    throw ModelError((model_dir / (has_vocab ? "vocab.json" : "merges.txt")).string() + ": found without " +
                     (has_vocab ? "merges.txt" : "vocab.json") + "; a GPT-2 style BPE tokenizer needs both");
  }
  return nullptr;
}

}  // namespace lens
