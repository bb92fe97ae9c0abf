// Picks a model directory's tokenizer from the files present (see lens/tokenizer.h).
#include <fstream>
#include <nlohmann/json.hpp>

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
    std::ifstream in(p);
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(p.string() + ": not valid JSON: " + e.what());
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  const nlohmann::json tc = read_tokenizer_config(dir);
  if (fs::exists(dir / "tokenizer.model")) {
    // LlamaTokenizer defaults: BOS on, EOS off.
    const bool add_bos = tc.value("add_bos_token", true);
    const bool add_eos = tc.value("add_eos_token", false);
    return load_sentencepiece(dir / "tokenizer.model", add_bos, add_eos);
  }
  return nullptr;
}

}  // namespace lens
