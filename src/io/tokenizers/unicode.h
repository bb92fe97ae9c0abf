// UTF-8 helpers shared by the tokenizer pieces (tokenizers' `utils` and `normalizer` char handling): decoding
// with Unicode's maximal-subpart rule, White_Space, escaping of invalid bytes, and ICU-backed normalization
// and lowercasing. Character classes for pre-tokenizers live in regexes (PCRE2), not here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

struct UNormalizer2;

namespace lens::tok {

void append_utf8(std::string& out, uint32_t cp);

/// Decodes the character at s[i]. Returns its length (1-4) and sets *cp, or returns -k when the k bytes at i
/// are a maximal invalid subsequence (Unicode's definition: the longest prefix of a well-formed sequence, at
/// least 1).
int utf8_step(std::string_view s, size_t i, uint32_t* cp);

bool is_valid_utf8(std::string_view s);

/// Rust's char::is_whitespace (Unicode White_Space); used by added tokens' lstrip / rstrip and Strip.
bool is_white_space(uint32_t cp);

/// The last code point of valid UTF-8 `s` (s non-empty), and its start offset.
uint32_t last_code_point(std::string_view s, size_t* start);

/// Bytes as valid UTF-8: valid characters kept, each byte of an invalid sequence written as \xNN.
std::string escape_invalid_utf8(std::string_view s);

/// `s` in normalization form `form` (ICU's NFC/NFD/NFKC/NFKD instance). HF uses the unicode-normalization
/// crate; both follow UAX #15, so they agree except on characters newer than the older one's tables.
std::string unicode_normalize(const UNormalizer2* form, std::string_view s);

/// HF's Lowercase: Rust's char::to_lowercase on each character on its own (no final-sigma rule).
std::string lowercase(std::string_view s);

}  // namespace lens::tok
