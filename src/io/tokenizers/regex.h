// Pre-tokenizer and Replace patterns: HF's Oniguruma regexes run with PCRE2 (UTF + UCP, JIT), translated
// where the two disagree (\s, \w, \h); literal String patterns too. Matching only: no captures, no offsets
// beyond whole matches.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lens::tok {

class Regex {
 public:
  /// `literal`: match `pattern` as a plain string (HF's Split with a String pattern). Throws ModelError naming
  /// `where` when the pattern does not compile.
  Regex(const std::string& pattern, bool literal, const std::string& where);
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  /// Non-overlapping matches in valid UTF-8 `s`, left to right, as (begin, end) byte offsets. After an empty
  /// match the search resumes one character later, as Oniguruma's and Rust's iterators do.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  pcre2_code* code_ = nullptr;
};

/// GPT-2's pattern, used by HF's ByteLevel pre-tokenizer when use_regex is true.
extern const char* const kGpt2Pattern;

/// `s` with every match of `pattern` replaced by `content` (HF's Replace normalizer and decoder).
std::string replace_all(const Regex& pattern, const std::string& content, std::string_view s);

}  // namespace lens::tok
