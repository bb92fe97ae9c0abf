// HF `normalizers`: NFC, NFD, NFKC, NFKD (ICU), Lowercase, Strip, Replace, Prepend and Sequences of them.
// Not here: BertNormalizer, Precompiled, NMT, StripAccents (refused by name when a file asks for them).
#include <unicode/unorm2.h>

#include "io/tokenizers/pipeline.h"
#include "io/tokenizers/unicode.h"
#include "lens/error.h"

namespace lens::tok {

namespace {

std::string strip(std::string_view s, bool left, bool right) {
  uint32_t cp = 0;
  int n = 0;
  while (left && !s.empty() && (n = utf8_step(s, 0, &cp)) > 0 && is_white_space(cp)) s.remove_prefix(n);
  size_t at = 0;
  while (right && !s.empty() && is_white_space(last_code_point(s, &at))) s = s.substr(0, at);
  return std::string(s);
}

}  // namespace

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

}  // namespace lens::tok

namespace lens {

using namespace tok;  // NOLINT

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

}  // namespace lens
