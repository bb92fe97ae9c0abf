// Lean JSON scanning for tokenizer files (see json_scan.h).
#include "io/tokenizers/json_scan.h"

#include <cstring>

#include "io/bpe_tokenizer.h"
#include "io/tokenizers/unicode.h"
#include "io/tokenizers/vocab.h"
#include "lens/error.h"

namespace lens::tok {

void JsonScanner::fail(const std::string& what) const {
  throw ModelError(where_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " + what);
}

void JsonScanner::skip_ws() {
  while (pos_ < s_.size()) {
    const char c = s_[pos_];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
    ++pos_;
  }
}

char JsonScanner::peek() {
  skip_ws();
  return pos_ < s_.size() ? s_[pos_] : '\0';
}

bool JsonScanner::consume(char c) {
  if (peek() != c) return false;
  ++pos_;
  return true;
}

void JsonScanner::expect(char c) {
  if (!consume(c)) {
    fail(pos_ < s_.size() ? std::string("expected '") + c + "', got '" + s_[pos_] + "'"
                          : std::string("expected '") + c + "', got the end of the text");
  }
}

bool JsonScanner::at_end() { return peek() == '\0' && pos_ >= s_.size(); }

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void JsonScanner::append_string(std::string& out) {
  expect('"');
  const size_t n = s_.size();
  while (true) {
    const size_t start = pos_;
    while (pos_ < n) {  // plain ASCII runs are copied in one go
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++pos_;
    }
    out.append(s_.data() + start, pos_ - start);
    if (pos_ >= n) fail("unterminated string");
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c == '"') {
      ++pos_;
      return;
    }
    if (c < 0x20) fail("control character in a string");
    if (c >= 0x80) {
      uint32_t cp = 0;
      const int len = utf8_step(s_, pos_, &cp);
      if (len < 0) fail("invalid UTF-8 in a string");
      out.append(s_.data() + pos_, len);
      pos_ += len;
      continue;
    }
    // An escape.
    if (pos_ + 1 >= n) fail("unterminated string");
    const char e = s_[pos_ + 1];
    pos_ += 2;
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        auto hex4 = [&]() -> uint32_t {
          if (pos_ + 4 > n) fail("truncated \\u escape");
          uint32_t v = 0;
          for (int k = 0; k < 4; ++k) {
            const int h = hex_value(s_[pos_ + k]);
            if (h < 0) fail("bad \\u escape");
            v = v * 16 + static_cast<uint32_t>(h);
          }
          pos_ += 4;
          return v;
        };
        uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in a \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair, as nlohmann and serde_json require
          if (pos_ + 2 > n || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') fail("lone high surrogate in a \\u escape");
          pos_ += 2;
          const uint32_t lo = hex4();
          if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair in a \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        append_utf8(out, cp);
        break;
      }
      default:
        pos_ -= 1;
        fail(std::string("bad escape '\\") + e + "'");
    }
  }
}

bool JsonScanner::integer(int64_t* out) {
  skip_ws();
  size_t p = pos_;
  const bool negative = p < s_.size() && s_[p] == '-';
  if (negative) ++p;
  const size_t digits = p;
  int64_t v = 0;
  while (p < s_.size() && s_[p] >= '0' && s_[p] <= '9') {
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (s_[p] - '0');
    ++p;
  }
  if (p == digits || (s_[digits] == '0' && p - digits > 1)) return false;
  if (p < s_.size() && (s_[p] == '.' || s_[p] == 'e' || s_[p] == 'E')) return false;
  *out = negative ? -v : v;
  pos_ = p;
  return true;
}

std::string_view JsonScanner::skip_value() {
  skip_ws();
  const size_t start = pos_, n = s_.size();
  int depth = 0;
  do {
    if (pos_ >= n) fail("unexpected end of the text");
    const char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      while (pos_ < n && s_[pos_] != '"') pos_ += s_[pos_] == '\\' ? 2 : 1;
      if (pos_ >= n) fail("unterminated string");
      ++pos_;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw ModelError(where_ + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                         " levels (at byte " + std::to_string(pos_) + "); refusing to parse it");
      }
      ++pos_;
    } else if (c == ']' || c == '}') {
      if (depth == 0) break;  // the end of the enclosing container: an empty value, caught by the parser
      --depth;
      ++pos_;
    } else if (depth == 0 && (c == ',' || c == ':')) {
      break;
    } else {
      ++pos_;  // scalars, separators and whitespace inside containers
    }
  } while (depth > 0 || (pos_ < n && std::strchr(",]}: \t\r\n", s_[pos_]) == nullptr));
  return s_.substr(start, pos_ - start);
}

nlohmann::json parse_json_dom(std::string_view text, const std::string& where) {
  check_json_depth(text, where);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(where + ": invalid JSON: " + e.what());
  }
}

bool MergeTexts::add_spaced(size_t start) {
  const std::string_view s = std::string_view(bytes).substr(start);
  const size_t sp = s.find(' ');
  if (sp == std::string_view::npos || s.find(' ', sp + 1) != std::string_view::npos) return false;
  pairs.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(sp), static_cast<uint32_t>(start + sp + 1),
                   static_cast<uint32_t>(s.size() - sp - 1)});
  return true;
}

VocabEntries read_vocab_object(JsonScanner& sc, const std::string& where) {
  VocabEntries v;
  sc.expect('{');
  if (sc.consume('}')) return v;
  do {
    const size_t start = v.bytes.size();
    sc.append_string(v.bytes);
    sc.expect(':');
    int64_t id = -1;
    if (!sc.integer(&id) || id < 0 || id > INT32_MAX) {
      const std::string_view raw = sc.skip_value();
      throw ModelError(where + ": token id must be a non-negative integer, got " + std::string(raw));
    }
    if (v.bytes.size() > UINT32_MAX) throw ModelError(where + ": over 4 GiB");
    const std::string_view piece = std::string_view(v.bytes).substr(start);
    v.entries.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(piece.size()), Vocab::hash(piece),
                         static_cast<int32_t>(id)});
  } while (sc.consume(','));
  sc.expect('}');
  return v;
}

MergeTexts read_merges_list(JsonScanner& sc, const std::string& where) {
  MergeTexts t;
  auto at = [&] { return where + "[" + std::to_string(t.pairs.size()) + "]"; };
  sc.expect('[');
  if (sc.consume(']')) return t;
  do {
    const size_t start = sc.offset(), from = t.bytes.size();
    if (t.bytes.size() > UINT32_MAX / 2) throw ModelError(where + ": over 2 GiB");
    if (sc.peek() == '"') {
      sc.append_string(t.bytes);
      if (!t.add_spaced(from)) {
        throw ModelError(at() + ": expected \"left right\", got '" + t.bytes.substr(from) + "'");
      }
      continue;
    }
    bool ok = sc.consume('[') && sc.peek() == '"';
    if (ok) sc.append_string(t.bytes);
    const size_t mid = t.bytes.size();
    ok = ok && sc.consume(',') && sc.peek() == '"';
    if (ok) sc.append_string(t.bytes);
    ok = ok && sc.consume(']');
    if (!ok) {
      sc.set_offset(start);
      throw ModelError(at() + ": expected \"left right\" or [left, right], got " + std::string(sc.skip_value()));
    }
    t.pairs.push_back({static_cast<uint32_t>(from), static_cast<uint32_t>(mid - from), static_cast<uint32_t>(mid),
                       static_cast<uint32_t>(t.bytes.size() - mid)});
  } while (sc.consume(','));
  sc.expect(']');
  return t;
}

TokenizerJsonParts split_tokenizer_json(std::string_view text, const std::string& where) {
  TokenizerJsonParts parts;
  JsonScanner sc(text, where);
  if (sc.peek() != '{') {  // not an object: nlohmann parses it (depth-checked) and the loader objects
    parts.doc = parse_json_dom(text, where);
    return parts;
  }
  auto dom = [&](std::string_view raw) {
    try {
      return nlohmann::json::parse(raw.begin(), raw.end());
    } catch (const nlohmann::json::exception& e) {
      throw ModelError(where + ": invalid JSON: " + e.what());
    }
  };
  parts.doc = nlohmann::json::object();
  std::string key;
  sc.expect('{');
  if (!sc.consume('}')) {
    do {
      sc.string(key);
      sc.expect(':');
      if (key == "model" && sc.peek() == '{') {
        parts.vocab.reset();  // a repeated "model" key: the last one counts, as for the DOM
        parts.vocab_text = {};
        parts.has_merges = false;
        parts.merges.reset();
        nlohmann::json model = nlohmann::json::object();
        std::string mkey;
        sc.expect('{');
        if (!sc.consume('}')) {
          do {
            sc.string(mkey);
            sc.expect(':');
            if (mkey == "vocab" && sc.peek() == '{') {
              parts.vocab = read_vocab_object(sc, where + ": model.vocab");
            } else if (mkey == "vocab") {
              parts.vocab_text = sc.skip_value();
              parts.vocab.reset();
            } else if (mkey == "merges") {
              parts.has_merges = true;
              if (sc.peek() == '[') {
                parts.merges = read_merges_list(sc, where + ": model.merges");
              } else {
                sc.skip_value();
                parts.merges.reset();
              }
            } else {
              model[mkey] = dom(sc.skip_value());  // depth-checked
            }
          } while (sc.consume(','));
          sc.expect('}');
        }
        parts.doc[key] = std::move(model);
      } else {
        parts.doc[key] = dom(sc.skip_value());
      }
    } while (sc.consume(','));
    sc.expect('}');
  }
  if (!sc.at_end()) sc.fail("text after the top-level object");
  return parts;
}

}  // namespace lens::tok

namespace lens {

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
      if (++depth > tok::kMaxJsonDepth) {
        throw ModelError(where + ": JSON nested deeper than " + std::to_string(tok::kMaxJsonDepth) +
                         " levels (at byte " + std::to_string(i) + "); refusing to parse it");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace lens
