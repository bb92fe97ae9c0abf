// HF's AddedVocabulary: added and special tokens are found in the text before anything else, in two passes
// (normalized=false tokens on the raw text, normalized=true ones on each normalized stretch between), with
// single_word / lstrip / rstrip. Leftmost-longest matching by first byte; no Aho-Corasick automaton.
#include <unicode/uchar.h>

#include <cctype>

#include "io/tokenizers/pipeline.h"
#include "io/tokenizers/unicode.h"

namespace lens {

using namespace tok;  // NOLINT

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
        return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & (U_GC_L_MASK | U_GC_M_MASK | U_GC_N_MASK)) != 0;
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

}  // namespace lens
