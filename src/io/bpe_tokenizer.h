// Byte-level BPE tokenizer (GPT-2, Llama 3 and other Hugging Face `tokenizers` byte-level BPE models) that
// reproduces HF's token ids exactly. Reads `tokenizer.json`, or the older GPT-2 `vocab.json` + `merges.txt`
// pair, plus `tokenizer_config.json`. Normalizers: NFC, NFD, NFKC, NFKD (ICU), Lowercase, Strip, Replace,
// Prepend and Sequences of them (Qwen2 and GPT-NeoX use NFC). Does not handle sentencepiece-style BPE
// (Metaspace, byte_fallback), other normalizers, BPE dropout, truncation/padding, pairs of sequences or
// offsets. Needs only the standard library, nlohmann_json, PCRE2 and ICU (no libtorch).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lens/tokenizer.h"

namespace lens {

/// A byte-level BPE tokenizer. Text that is not valid UTF-8 is first made valid the way Python's
/// `bytes.decode("utf-8", errors="replace")` (and Rust's `String::from_utf8_lossy`) do: each maximal invalid
/// subsequence becomes one U+FFFD. Ids then match HF `tokenizers` on that replaced string. Thread-safe:
/// encode may be called from several threads (the per-word cache is locked).
class BpeTokenizer : public Tokenizer {
 public:
  struct Impl;  // the loaded tables; defined in bpe_tokenizer.cpp
  explicit BpeTokenizer(std::unique_ptr<Impl> impl);
  ~BpeTokenizer() override;

  /// HF `encode(text, add_special_tokens=add_special).ids`: added/special tokens written in the text are
  /// always matched (as HF does by default); `add_special` applies the post-processor (e.g. Llama 3's BOS)
  /// or, for vocab.json + merges.txt, the BOS that tokenizer_config.json's add_bos_token asks for.
  /// As in HF's AddedVocabulary::extract_and_normalize: added tokens with normalized=false (special or
  /// not) are matched on the raw text first; each stretch of text between them is then normalized on its
  /// own, and tokens with normalized=true are matched in it by their own normalized content.
  std::vector<int64_t> encode(const std::string& text, bool add_special = true) const override;

  /// HF `decode(ids)` with skip_special_tokens=True (the `tokenizers` default): special added tokens are
  /// dropped, byte-level pieces become bytes, invalid UTF-8 becomes U+FFFD. Ids outside the vocabulary are
  /// skipped.
  std::string decode(const std::vector<int64_t>& ids) const override;

  /// The bytes of one token as valid UTF-8: GPT-2's U+0120 becomes a space; bytes that are not valid UTF-8
  /// on their own (a token holding part of a character) are shown as `\xNN`. Throws InputError when out of
  /// range.
  std::string token_text(int64_t id) const override;

  /// The vocabulary string of one token ("Ġthe", "<|endoftext|>"). Throws InputError when out of range.
  std::string piece(int64_t id) const override;

  /// One past the largest id of the vocabulary and the added tokens.
  int64_t vocab_size() const override;
  std::optional<int64_t> bos_id() const override;
  std::optional<int64_t> eos_id() const override;
  std::string kind() const override { return "bpe"; }
  std::string special_rule() const override;

  /// The pre-tokens `text` is split into before BPE (normalized UTF-8, added tokens excluded); for tests.
  std::vector<std::string> pre_tokenize(const std::string& text) const;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Loads a byte-level BPE tokenizer from a Hugging Face model directory: `tokenizer.json` if present, else
/// `vocab.json` + `merges.txt` (GPT2Tokenizer: no BOS unless tokenizer_config.json sets add_bos_token),
/// honouring `tokenizer_config.json`. Returns nullptr when the directory has no byte-level BPE tokenizer:
/// neither file set, or a `tokenizer.json` whose model is not BPE or that is not byte-level (e.g. Llama 2's
/// Metaspace + byte_fallback, which the sentencepiece loader handles from `tokenizer.model`). Throws
/// ModelError, naming the file and the problem, for files that exist but are broken or use features this
/// implementation does not support.
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::filesystem::path& model_dir);

/// Throws ModelError naming `where` when JSON `text` nests arrays/objects deeper than 64 levels: nlohmann
/// recurses once per level, so a hostile file would otherwise overflow the stack. Call before parsing.
void check_json_depth(std::string_view text, const std::string& where);

/// `text` with every maximal invalid UTF-8 subsequence replaced by U+FFFD (Unicode's "best practice", as in
/// Python's errors="replace" and Rust's from_utf8_lossy). Valid input is returned unchanged.
std::string sanitize_utf8(const std::string& text);

}  // namespace lens
