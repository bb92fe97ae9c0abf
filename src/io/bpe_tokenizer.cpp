// Byte-level and sentencepiece-style BPE tokenizer matching Hugging Face `tokenizers` ids (scope in
// bpe_tokenizer.h). One encode: invalid UTF-8 -> U+FFFD; split out added tokens (added_vocabulary.cpp);
// normalize the text between them (normalizers.cpp); pre-tokenize (pre_tokenizers.cpp); BPE each pre-token
// (bpe_model.cpp); post-process (processors.cpp). Decoding runs decoders.cpp. Loading is loader.cpp; the files
// under io/tokenizers/ follow HF `tokenizers`' modules. Not here: offsets, BPE dropout, pairs,
// truncation/padding.
#include "io/bpe_tokenizer.h"

#include <cctype>

#include "io/tokenizers/pipeline.h"
#include "io/tokenizers/unicode.h"
#include "lens/error.h"

namespace lens {

using namespace tok;  // NOLINT: the tokenizer pieces (tokenizers/*.h)

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

}  // namespace lens
