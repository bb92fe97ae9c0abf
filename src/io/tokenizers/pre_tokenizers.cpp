// HF `pre_tokenizers`: ByteLevel (GPT-2's byte table and regex), Split, Digits, Metaspace, Whitespace,
// WhitespaceSplit, Punctuation and Sequences of them, with HF's split behaviours (Removed, Isolated,
// MergedWithPrevious, MergedWithNext, Contiguous). Not here: BertPreTokenizer, UnicodeScripts, CharDelimiterSplit
// (refused by name when a file asks for them).
#include <algorithm>

#include "io/tokenizers/pipeline.h"
#include "io/tokenizers/unicode.h"
#include "lens/error.h"

namespace lens::tok {

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

}  // namespace lens::tok

namespace lens {

using namespace tok;  // NOLINT

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

}  // namespace lens
