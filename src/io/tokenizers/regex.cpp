// PCRE2 matching with HF's Oniguruma semantics (see regex.h).
#include "io/tokenizers/regex.h"

#include "lens/error.h"

namespace lens::tok {

namespace {

// HF compiles pre-tokenizer patterns with Oniguruma (Ruby syntax); PCRE2 differs in a few escapes:
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

}  // namespace

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) {
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

void Regex::find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
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

// GPT-2's pattern, used by HF's ByteLevel pre-tokenizer when use_regex is true.
const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

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

}  // namespace lens::tok
