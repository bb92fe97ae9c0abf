// UTF-8 decoding, White_Space, and ICU normalization / lowercasing for the tokenizer (see unicode.h).
#include "io/tokenizers/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "lens/error.h"

namespace lens::tok {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int utf8_step(std::string_view s, size_t i, uint32_t* cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int len = 0;
  uint32_t v = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, v = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, v = c & 0x07;
    if (c == 0xF0) lo = 0x90;  // no overlongs
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return -k;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) return -k;
    lo = 0x80, hi = 0xBF;
    v = (v << 6) | (b & 0x3F);
  }
  *cp = v;
  return len;
}

bool is_valid_utf8(std::string_view s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {  // ASCII fast path
      ++i;
      continue;
    }
    const int n = utf8_step(s, i, &cp);
    if (n < 0) return false;
    i += n;
  }
  return true;
}

bool is_white_space(uint32_t cp) { return u_isUWhiteSpace(static_cast<UChar32>(cp)) != 0; }

uint32_t last_code_point(std::string_view s, size_t* start) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  uint32_t cp = 0;
  utf8_step(s, i, &cp);
  *start = i;
  return cp;
}

std::string escape_invalid_utf8(std::string_view s) {
  std::string out;
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_step(s, i, &cp);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      for (int k = 0; k < -n; ++k) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(s[i + k]));
        out += buf;
      }
      i += -n;
    }
  }
  return out;
}

// ICU works on UTF-16: UTF-8 -> UTF-16 -> normalize -> UTF-8.
std::string unicode_normalize(const UNormalizer2* form, std::string_view s) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(s);  // ASCII is unchanged by every normalization form
  }
  if (s.size() > static_cast<size_t>(INT32_MAX / 4)) throw InputError("text too long to normalize");
  UErrorCode err = U_ZERO_ERROR;
  std::vector<UChar> src(s.size());  // UTF-16 never needs more units than UTF-8 has bytes
  int32_t n_src = 0;
  u_strFromUTF8(src.data(), static_cast<int32_t>(src.size()), &n_src, s.data(),
                static_cast<int32_t>(s.size()), &err);
  std::vector<UChar> dst(static_cast<size_t>(n_src) * 2 + 16);
  int32_t n_dst =
      unorm2_normalize(form, src.data(), n_src, dst.data(), static_cast<int32_t>(dst.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {  // decompositions can grow a lot (U+FDFA: 18 characters)
    err = U_ZERO_ERROR;
    dst.resize(static_cast<size_t>(n_dst));
    n_dst = unorm2_normalize(form, src.data(), n_src, dst.data(), n_dst, &err);
  }
  std::string out(static_cast<size_t>(n_dst) * 3, '\0');  // at most 3 UTF-8 bytes per UTF-16 unit
  int32_t n_out = 0;
  if (U_SUCCESS(err)) {
    u_strToUTF8(&out[0], static_cast<int32_t>(out.size()), &n_out, dst.data(), n_dst, &err);
  }
  if (U_FAILURE(err)) throw InputError(std::string("Unicode normalization failed: ") + u_errorName(err));
  out.resize(static_cast<size_t>(n_out));
  return out;
}

// Rust's to_lowercase maps only U+0130 to more than one character ("i" + U+0307); the rest is ICU's
// simple lowercase.
std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  uint32_t cp = 0;
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_step(s, i, &cp);  // s is valid UTF-8
    if (cp < 0x80) {
      out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else if (cp == 0x130) {
      out += "i\xCC\x87";
    } else {
      append_utf8(out, static_cast<uint32_t>(u_tolower(static_cast<UChar32>(cp))));
    }
    i += n;
  }
  return out;
}

}  // namespace lens::tok

namespace lens {

std::string sanitize_utf8(const std::string& text) {
  if (tok::is_valid_utf8(text)) return text;
  std::string out;
  out.reserve(text.size() + 16);
  uint32_t cp;
  for (size_t i = 0; i < text.size();) {
    const int n = tok::utf8_step(text, i, &cp);
    if (n > 0) {
      out.append(text, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += -n;
    }
  }
  return out;
}

}  // namespace lens
