// sentencepiece tokenizer (tokenizer.model) used through the dlopen'ed shim liblens_spm.so.
#pragma once

#include <filesystem>
#include <memory>

#include "lens/tokenizer.h"

namespace lens {

/// Loads `model_file`; `add_bos` follows tokenizer_config.json's add_bos_token.
std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model_file, bool add_bos, bool add_eos);

/// Display text for a raw piece: U+2581 -> space, "<0xNN>" -> the byte when it is printable ASCII
/// or whitespace. Shared with other tokenizers that use sentencepiece-style pieces.
std::string sentencepiece_display(const std::string& piece);

}  // namespace lens
