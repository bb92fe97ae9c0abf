// A lean JSON reader for the large parts of tokenizer files (tokenizer.json's model.vocab and model.merges,
// vocab.json): strings and integers read in place, with no DOM. nlohmann's DOM parse of those parts was
// most of the seconds Gemma 3's and Llama 3's files took to load. Everything else still goes through
// nlohmann (small). Nesting is bounded (kMaxJsonDepth) without recursion, so hostile files cannot overflow
// the stack. Not a general JSON library: no floats beyond skipping them, no writing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lens::tok {

constexpr int kMaxJsonDepth = 64;

/// A cursor over JSON text. Errors throw ModelError "<where>: invalid JSON at byte N: ...".
class JsonScanner {
 public:
  JsonScanner(std::string_view text, std::string where) : s_(text), where_(std::move(where)) {}

  /// The next non-whitespace byte, or '\0' at the end.
  char peek();
  /// Consumes `c` (after whitespace) when it is next.
  bool consume(char c);
  /// Consumes `c` (after whitespace) or throws.
  void expect(char c);
  /// Reads the string at the cursor into `out`, unescaped; rejects invalid UTF-8 and lone surrogates.
  void string(std::string& out) {
    out.clear();
    append_string(out);
  }
  /// As string(), appending to `out`.
  void append_string(std::string& out);
  /// Reads an integer at the cursor; false (cursor unmoved) when the value is not a JSON integer
  /// that fits in int64.
  bool integer(int64_t* out);
  /// Skips one value and returns its text. Strings are checked for termination only; the depth bound is
  /// enforced ("nested deeper than 64 levels").
  std::string_view skip_value();
  /// True when only whitespace is left.
  bool at_end();
  size_t offset() const { return pos_; }
  /// The name used in error messages.
  const std::string& where() const { return where_; }
  void set_where(std::string where) { where_ = std::move(where); }
  void set_offset(size_t pos) { pos_ = pos; }
  [[noreturn]] void fail(const std::string& what) const;

 private:
  void skip_ws();
  std::string_view s_;
  std::string where_;
  size_t pos_ = 0;
};

/// A {piece: id} object as read, before it is indexed: pieces back to back in `bytes`, each entry with its
/// place, Vocab::hash and id.
struct VocabEntries {
  struct Entry {
    uint32_t offset, size, hash;
    int32_t id;
  };
  std::string bytes;
  std::vector<Entry> entries;
  std::string_view piece(const Entry& e) const { return std::string_view(bytes).substr(e.offset, e.size); }
};

/// BPE merges as read, before they are resolved to ids: left and right tokens back to back in `bytes`.
struct MergeTexts {
  struct Pair {
    uint32_t left, left_size, right, right_size;
  };
  std::string bytes;
  std::vector<Pair> pairs;
  std::string_view left(const Pair& p) const { return std::string_view(bytes).substr(p.left, p.left_size); }
  std::string_view right(const Pair& p) const { return std::string_view(bytes).substr(p.right, p.right_size); }
  /// Adds the pair written "left right" at bytes[start..]; false unless that is two tokens and one space.
  bool add_spaced(size_t start);
};

/// Reads a {piece: id} object at the cursor (ids non-negative int32). `where` names it in errors.
VocabEntries read_vocab_object(JsonScanner& sc, const std::string& where);

/// Reads a list of merges at the cursor: "left right" strings (older files) or [left, right] pairs
/// (tokenizers >= 0.20). `where` names the list in errors ("<where>[i]: ...").
MergeTexts read_merges_list(JsonScanner& sc, const std::string& where);

/// tokenizer.json read for loading in one pass: `doc` holds everything except model.vocab and model.merges
/// (a small DOM). A vocab object and a merges list are read in place into `vocab` / `merges`; a vocab that
/// is not an object (Unigram's list) is left as text in `vocab_text`. Absent parts stay empty.
struct TokenizerJsonParts {
  nlohmann::json doc;
  std::optional<VocabEntries> vocab;
  std::string_view vocab_text;
  bool has_merges = false;
  std::optional<MergeTexts> merges;  // null when model.merges is not a list
};

/// Splits tokenizer.json text (see TokenizerJsonParts). Throws ModelError naming `where` on invalid JSON or
/// nesting deeper than kMaxJsonDepth. A top level that is not an object is returned as it is in `doc`.
TokenizerJsonParts split_tokenizer_json(std::string_view text, const std::string& where);

/// nlohmann's parse of `text` (at most kMaxJsonDepth deep, checked first), errors as ModelError "invalid JSON".
nlohmann::json parse_json_dom(std::string_view text, const std::string& where);

}  // namespace lens::tok
