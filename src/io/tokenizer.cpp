// Picks a model directory's tokenizer from the files present (see lens/tokenizer.h).
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "io/bpe_tokenizer.h"
#include "io/sentencepiece_tokenizer.h"
#include "lens/error.h"
#include "lens/tokenizer.h"

namespace lens {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_tokenizer_config(const fs::path& dir) {
  const fs::path p = dir / "tokenizer_config.json";
  if (!fs::exists(p)) return nlohmann::json::object();
  try {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    check_json_depth(text.str(), p.string());
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(p.string() + ": not valid JSON: " + e.what());
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  // Byte-level BPE (tokenizer.json or vocab.json + merges.txt) first; a tokenizer.json that is not
  // byte-level (Llama 2's Metaspace) yields nullptr and falls back to sentencepiece.
  if (auto bpe = load_bpe_tokenizer(dir)) return bpe;
  if (fs::exists(dir / "tokenizer.model")) {
    // Read here only: Gemma 3's tokenizer_config.json is 1.1 MB, and the BPE loader reads it itself.
    const nlohmann::json tc = read_tokenizer_config(dir);
    // LlamaTokenizer defaults: BOS on, EOS off.
    auto flag = [&](const char* key, bool fallback) {
      return tc.contains(key) && tc[key].is_boolean() ? tc[key].get<bool>() : fallback;
    };
    const bool add_bos = flag("add_bos_token", true);
    const bool add_eos = flag("add_eos_token", false);
    return load_sentencepiece(dir / "tokenizer.model", add_bos, add_eos);
  }
  return nullptr;
}

}  // namespace lens
