// Tokenizer interface shared by the sentencepiece and byte-level BPE implementations.
// Loading picks the implementation from the files found in a model directory; it never needs Python.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lens {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Token ids for `text`. With `add_special`, special tokens the tokenizer's config asks for
  /// (e.g. BOS for LLaMA when add_bos_token is true) are added.
  virtual std::vector<int64_t> encode(const std::string& text, bool add_special = true) const = 0;

  /// Text for a sequence of ids (special tokens dropped where the tokenizer does so).
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;

  /// Display text of one token, as it reads inside a sentence: sentencepiece's U+2581 and GPT-2's
  /// U+0120 become a space, byte tokens become their byte where that is valid UTF-8. Always valid UTF-8.
  virtual std::string token_text(int64_t id) const = 0;

  /// The raw vocabulary piece of one token (e.g. "▁Once", "Ġthe", "<0x0A>").
  virtual std::string piece(int64_t id) const = 0;

  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> bos_id() const = 0;
  virtual std::optional<int64_t> eos_id() const = 0;

  /// Short name of the implementation: "sentencepiece", "bpe".
  virtual std::string kind() const = 0;

  /// Which rule decides the special tokens encode(text, true) adds (e.g. "tokenizer.json post_processor
  /// (TemplateProcessing) ..."), for reports; empty when not known.
  virtual std::string special_rule() const { return ""; }
};

/// Loads the tokenizer of a Hugging Face model directory: `tokenizer.json` (byte-level BPE),
/// `vocab.json` + `merges.txt` (GPT-2 BPE), or `tokenizer.model` (sentencepiece), honouring
/// `tokenizer_config.json`. Returns nullptr when the directory has no tokenizer files;
/// throws ModelError when files exist but cannot be read.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir);

}  // namespace lens
