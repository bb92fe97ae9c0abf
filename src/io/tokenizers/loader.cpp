// Loading a BPE tokenizer: tokenizer.json (read in one pass, model.vocab and model.merges in place; see
// json_scan.h) with tokenizer_config.json and transformers 5.23's class rules, or GPT-2's vocab.json +
// merges.txt. Builds BpeTokenizer::Impl from the component parsers of the other files.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/tokenizers/pipeline.h"
#include "io/tokenizers/unicode.h"
#include "lens/error.h"

namespace lens::tok {

bool json_bool(const json& obj, const char* key, bool fallback, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  if (!obj[key].is_boolean()) throw ModelError(where + ": \"" + key + "\" must be true or false");
  return obj[key].get<bool>();
}

std::string json_string(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) {
    throw ModelError(where + ": missing string \"" + key + "\"");
  }
  return obj[key].get<std::string>();
}

int32_t json_id(const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
    throw ModelError(where + ": token id must be a non-negative integer, got " + v.dump());
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

}  // namespace lens::tok

namespace lens {

using namespace tok;  // NOLINT

// Builds the id tables once the vocabulary, merges and added tokens are known.
void BpeTokenizer::Impl::finish(const std::string& where) {
  size_t n = 0;
  vocab.for_each([&](std::string_view, int32_t id) { n = std::max<size_t>(n, static_cast<size_t>(id) + 1); });
  for (const AddedToken& t : added) n = std::max<size_t>(n, static_cast<size_t>(t.id) + 1);
  pieces.assign(n, std::string());
  present.assign(n, 0);
  special.assign(n, 0);
  vocab.for_each([&](std::string_view piece, int32_t id) {
    pieces[id].assign(piece);
    present[id] = 1;
  });
  // HF (tokenizers 0.23) keeps a normalized=true token under its normalized content: id_to_token and
  // decode give that, and decode skips it only when that string is some special token's content.
  std::unordered_map<std::string, bool> special_contents;
  for (AddedToken& t : added) {
    if (t.content.empty()) throw ModelError(where + ": added token " + std::to_string(t.id) + " is empty");
    t.pattern = t.normalized ? normalize(t.content) : t.content;
    if (t.special) special_contents[t.content] = true;
  }
  for (const AddedToken& t : added) {
    pieces[t.id] = t.pattern;
    present[t.id] = 1;
    special[t.id] = special_contents.count(t.pattern) ? 1 : 0;
  }
  for (int first = 0; first < 2; ++first) {
    for (int last = 0; last < 2; ++last) {
      for (int b = 0; b < 256; ++b) {
        std::string s = (first ? "" : prefix) + byte_level().byte_to_char[b] + (last ? suffix : "");
        byte_ids[first + 2 * last][b] = vocab.find(s);
      }
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_fallback_ids[b] = vocab.find(name);
  }
  for (auto& pass : added_by_first_byte) {
    for (auto& v : pass) v.clear();
  }
  // HF partitions on `normalized` alone (special tokens too) and matches normalized tokens by their
  // normalized content (AddedVocabulary::refresh_added_tokens).
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& t = added[i];
    if (t.pattern.empty()) continue;  // normalized away (e.g. Strip of a whitespace token): never matched
    added_by_first_byte[t.normalized ? 1 : 0][static_cast<unsigned char>(t.pattern[0])].push_back(
        static_cast<int>(i));
  }
  for (auto& pass : added_by_first_byte) {
    for (auto& v : pass) {
      std::stable_sort(v.begin(), v.end(),
                       [&](int a, int b) { return added[a].pattern.size() > added[b].pattern.size(); });
    }
  }
}

namespace {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw ModelError(path.string() + ": cannot open file");
  std::string text(static_cast<size_t>(in.tellg()), '\0');  // one read into a buffer of the file's size
  in.seekg(0);
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  if (!in) throw ModelError(path.string() + ": read error");
  return text;
}

// Tokenizer files nest a few levels (a Sequence of Sequences at most); nlohmann's parser and the json
// destructor recurse once per level, so a hostile file nested 200,000 deep would overflow the stack: the
// scanner and parse_json_dom bound the depth first (json_scan.h). The size bound keeps a stray multi-GB file
// from exhausting memory (Gemma 3's 262k-token tokenizer.json is 33 MB).
constexpr std::uintmax_t kMaxJsonBytes = 1ull << 30;

// The text of a JSON file, refused above kMaxJsonBytes.
std::string read_json_text(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxJsonBytes) {
    throw ModelError(path.string() + ": " + std::to_string(size) + " bytes; refusing JSON files over " +
                     std::to_string(kMaxJsonBytes >> 20) + " MiB");
  }
  return read_text_file(path);
}

json parse_json_file(const std::filesystem::path& path) { return parse_json_dom(read_json_text(path), path.string()); }

// A special token written in tokenizer_config.json: a string, an AddedToken dict ({"content": ...}) or null.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

AddedToken parse_added_token(const json& t, const std::string& where) {
  if (!t.is_object()) throw ModelError(where + ": added token must be an object");
  AddedToken a;
  a.content = json_string(t, "content", where);
  a.id = t.contains("id") ? json_id(t["id"], where) : 0;
  a.special = json_bool(t, "special", false, where);
  a.single_word = json_bool(t, "single_word", false, where);
  a.lstrip = json_bool(t, "lstrip", false, where);
  a.rstrip = json_bool(t, "rstrip", false, where);
  a.normalized = json_bool(t, "normalized", !a.special, where);
  return a;
}

void set_bos_eos(Impl& m, const json& config) {
  if (auto s = config_token(config, "bos_token")) m.bos = m.token_to_id(*s);
  if (auto s = config_token(config, "eos_token")) m.eos = m.token_to_id(*s);
  if (!m.bos && !m.templates.empty() && !m.templates.front().before.empty())
    m.bos = m.templates.front().before[0];
  if (!m.eos && !m.templates.empty() && !m.templates.front().after.empty())
    m.eos = m.templates.front().after.back();
  if (!m.eos) {
    for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>"}) {
      auto id = m.token_to_id(name);
      if (id && m.special[*id]) {
        m.eos = id;
        break;
      }
    }
  }
}

json read_config(const std::filesystem::path& dir) {
  const auto path = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(path)) return json::object();
  json c = parse_json_file(path);
  if (!c.is_object()) throw ModelError(path.string() + ": expected a JSON object");
  return c;
}

// Whether transformers 5.23 would call this tokenizer.json byte-level: it searches the file for
// "ByteLevel" (TokenizersBackend._tokenizer_json_has_byte_level); the components are where it occurs.
bool mentions_byte_level(const json& j) {
  for (const char* key : {"normalizer", "pre_tokenizer", "post_processor", "decoder"}) {
    if (j.contains(key) && j[key].dump().find("\"ByteLevel\"") != std::string::npos) return true;
  }
  return false;
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& dir) {
  const auto path = dir / "tokenizer.json";
  const std::string where = path.string();
  // The DOM holds everything but model.vocab and model.merges, which are read in place below.
  const std::string text = read_json_text(path);
  const TokenizerJsonParts parts = split_tokenizer_json(text, where);
  const json& j = parts.doc;
  if (!j.is_object()) throw ModelError(where + ": expected a JSON object at the top level");
  if (!j.contains("model") || !j["model"].is_object()) throw ModelError(where + ": no \"model\" object");
  const json& model = j["model"];
  std::string type = model.value("type", "");
  if (type.empty() && parts.has_merges) type = "BPE";  // HF infers the type when it is left out
  if (type == "Unigram" || type == "WordPiece" || type == "WordLevel") {
    if (std::filesystem::exists(dir / "tokenizer.model")) return nullptr;  // sentencepiece's job
    throw ModelError(where + ": model type '" + type + "' is not supported (only BPE)");
  }
  if (type != "BPE") {
    throw ModelError(where + ": unknown model type '" + type +
                     "' (expected BPE, Unigram, WordPiece or WordLevel)");
  }
  const json config = read_config(dir);
  const bool byte_level = mentions_byte_level(j);
  // A sentencepiece-style tokenizer.json next to a tokenizer.model: the sentencepiece loader, which
  // reproduces sentencepiece itself (the path that was checked against Llama 2).
  if (!has_byte_level(j.value("pre_tokenizer", json())) && std::filesystem::exists(dir / "tokenizer.model")) {
    return nullptr;
  }

  // transformers 5.23 loads most tokenizer.json files as they are (TokenizersBackend), but classes with
  // their own __init__ rebuild the pipeline around the file's vocabulary and merges and keep only its
  // post-processor. LlamaTokenizer (unless the file is byte-level, then TokenizersBackend) and
  // GemmaTokenizer are the sentencepiece-style ones: see models/{llama,gemma}/tokenization_*.py.
  std::string cls = config.value("tokenizer_class", "");
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  const bool llama_class = cls == "LlamaTokenizer" && !byte_level;
  const bool gemma_class = cls == "GemmaTokenizer";
  const bool gpt2_class = cls == "GPT2Tokenizer";

  auto m = std::make_unique<Impl>();
  m->source = where;
  if (!parts.vocab) {
    throw ModelError(where + (parts.vocab_text.empty() ? ": model.vocab is missing"
                                                       : ": model.vocab: vocabulary must be a JSON object {token: id}"));
  }
  add_vocab(*m, *parts.vocab);
  if (!parts.merges) throw ModelError(where + ": model.merges is missing or not a list");
  auto opt_string = [&](const char* key) {
    return model.contains(key) && model[key].is_string() ? model[key].get<std::string>() : std::string();
  };
  std::string unk;
  if (llama_class || gemma_class) {  // BPE(vocab, merges, fuse_unk=True, byte_fallback=True[, unk_token])
    m->fuse_unk = m->byte_fallback = true;
    if (gemma_class) unk = config_token(config, "unk_token").value_or("<unk>");
  } else if (gpt2_class) {  // BPE(vocab, merges, continuing_subword_prefix="", end_of_word_suffix="")
  } else {
    m->prefix = opt_string("continuing_subword_prefix");
    m->suffix = opt_string("end_of_word_suffix");
    unk = opt_string("unk_token");
    m->fuse_unk = json_bool(model, "fuse_unk", false, where + ": model");
    m->byte_fallback = json_bool(model, "byte_fallback", false, where + ": model");
    m->ignore_merges = json_bool(model, "ignore_merges", false, where + ": model");
    if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0.0) {
      throw ModelError(where + ": BPE dropout is not supported (it makes encoding random)");
    }
  }
  if (!unk.empty()) {
    const int32_t id = m->vocab.find(unk);
    if (id < 0) throw ModelError(where + ": unk_token '" + unk + "' is not in the vocabulary");
    m->unk_id = id;
  }
  add_merges(*m, *parts.merges, [&](size_t i) { return where + ": model.merges[" + std::to_string(i) + "]"; });

  if (llama_class) {
    // LlamaTokenizer: no normalizer; Metaspace(prepend_scheme from add_prefix_space and legacy,
    // split=False); decoder Replace, ByteFallback, Fuse (+ Strip of one leading space).
    const bool add_prefix_space = json_bool(config, "add_prefix_space", true, "tokenizer_config.json");
    const bool legacy = json_bool(config, "legacy", false, "tokenizer_config.json");
    json pre{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"split", false},
             {"prepend_scheme", add_prefix_space ? (legacy ? "always" : "first") : "never"}};
    json dec{{"type", "Sequence"},
             {"decoders",
              {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
               {{"type", "ByteFallback"}},
               {{"type", "Fuse"}}}}};
    if (add_prefix_space) dec["decoders"].push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    parse_pre_tokenizer(pre, where + " (as LlamaTokenizer)", m->pre_steps);
    parse_decoder(dec, where + " (as LlamaTokenizer)", *m);
  } else if (gemma_class) {
    // GemmaTokenizer: Replace(" ", "\u2581"); Split(" ", merged_with_previous); Replace, ByteFallback, Fuse.
    json norm{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
    json pre{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}, {"invert", false}};
    json dec{{"type", "Sequence"},
             {"decoders",
              {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
               {{"type", "ByteFallback"}},
               {{"type", "Fuse"}}}}};
    parse_normalizer(norm, where + " (as GemmaTokenizer)", m->normalizer);
    parse_pre_tokenizer(pre, where + " (as GemmaTokenizer)", m->pre_steps);
    parse_decoder(dec, where + " (as GemmaTokenizer)", *m);
  } else if (gpt2_class) {
    // GPT2Tokenizer: no normalizer; ByteLevel(add_prefix_space from the config) with GPT-2's regex, even
    // where the file has another split pattern (GPT-4o's); ByteLevel decoder.
    json pre{{"type", "ByteLevel"},
             {"add_prefix_space", json_bool(config, "add_prefix_space", false, "tokenizer_config.json")}};
    parse_pre_tokenizer(pre, where + " (as GPT2Tokenizer)", m->pre_steps);
    parse_decoder(json{{"type", "ByteLevel"}}, where + " (as GPT2Tokenizer)", *m);
  } else {
    parse_normalizer(j.value("normalizer", json()), where, m->normalizer);
    const json pre = j.value("pre_tokenizer", json());
    if (!pre.is_null()) parse_pre_tokenizer(pre, where, m->pre_steps);
    parse_decoder(j.value("decoder", json()), where, *m);
  }
  m->byte_level_model = false;
  for (size_t i = 0; i < m->pre_steps.size(); ++i) {
    if (!m->pre_steps[i].byte_level) continue;
    if (i + 1 != m->pre_steps.size()) {
      throw ModelError(where +
                       ": unsupported pre_tokenizer: ByteLevel must be the last step of the Sequence");
    }
    m->byte_level_model = true;
  }
  parse_post_processor(j.value("post_processor", json()), where, *m);
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) throw ModelError(where + ": added_tokens must be a list");
    for (const json& t : j["added_tokens"])
      m->added.push_back(parse_added_token(t, where + ": added_tokens"));
  }
  // "truncation" and "padding" are not read: transformers turns them off for a plain tokenizer(text).
  // transformers adds the config's named special tokens (and the class defaults) as special added tokens:
  // decode(skip_special_tokens=True) drops them even where tokenizer.json says special=false (Gemma's <mask>).
  std::vector<std::string> named;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token", "mask_token", "cls_token", "sep_token"}) {
    if (auto t = config_token(config, key)) named.push_back(*t);
  }
  for (const char* key : {"additional_special_tokens", "extra_special_tokens"}) {
    if (!config.contains(key)) continue;
    const json& list = config[key];
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (it->is_string()) named.push_back(it->get<std::string>());
    }
  }
  if (gemma_class) {
    for (const char* t : {"<bos>", "<eos>", "<unk>", "<pad>", "<mask>"}) named.push_back(t);
  }
  for (const std::string& name : named) {
    auto added = std::find_if(m->added.begin(), m->added.end(), [&](const AddedToken& t) { return t.content == name; });
    if (added != m->added.end()) {
      added->special = true;
      continue;
    }
    const int32_t id = m->vocab.find(name);
    if (id < 0) continue;
    AddedToken t;
    t.content = name;
    t.id = id;
    t.special = true;
    m->added.push_back(t);
  }
  m->finish(where);

  // transformers 5.23 drops add_bos_token / add_eos_token from tokenizer_config.json whenever a
  // tokenizer.json is present (PreTrainedTokenizerBase._from_pretrained): the file's post-processor alone
  // decides. A null post-processor becomes "$A" (add_bos_token then defaults to False): nothing added.
  const std::string as = llama_class   ? "LlamaTokenizer"
                         : gemma_class ? "GemmaTokenizer"
                         : gpt2_class  ? "GPT2Tokenizer"
                                       : "TokenizersBackend";
  m->special_rule = "tokenizer.json post_processor (" +
                    (j.contains("post_processor") && j["post_processor"].is_object()
                         ? j["post_processor"].value("type", std::string("?"))
                         : std::string("none")) +
                    ") as transformers 5.23 " + as + "; tokenizer_config.json add_bos_token/add_eos_token ignored";
  set_bos_eos(*m, config);
  return std::make_unique<BpeTokenizer>(std::move(m));
}

std::unique_ptr<Tokenizer> load_vocab_merges(const std::filesystem::path& dir) {
  const auto vocab_path = dir / "vocab.json", merges_path = dir / "merges.txt";
  auto m = std::make_unique<Impl>();
  m->source = vocab_path.string() + " + merges.txt";
  const json config = read_config(dir);
  {
    const std::string text = read_json_text(vocab_path);
    JsonScanner sc(text, vocab_path.string());
    if (sc.peek() != '{') throw ModelError(vocab_path.string() + ": vocabulary must be a JSON object {token: id}");
    add_vocab(*m, read_vocab_object(sc, vocab_path.string()));
    if (!sc.at_end()) sc.fail("text after the vocabulary");
  }

  std::istringstream lines(read_text_file(merges_path));
  std::string line;
  MergeTexts t;
  std::vector<int> line_nos;
  for (int line_no = 1; std::getline(lines, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t from = t.bytes.size();
    t.bytes += line;
    if (!t.add_spaced(from)) {
      throw ModelError(merges_path.string() + ":" + std::to_string(line_no) +
                       ": expected two tokens separated by one space, got '" + line + "'");
    }
    line_nos.push_back(line_no);
  }
  add_merges(*m, t, [&](size_t i) { return merges_path.string() + ":" + std::to_string(line_nos[i]); });
  const size_t rank = t.pairs.size();
  if (rank == 0) throw ModelError(merges_path.string() + ": no merges");

  // GPT2TokenizerFast: ByteLevel pre-tokenizer (add_prefix_space from the config), ByteLevel decoder.
  m->decoder.push_back(DecodeStep{});
  m->special_rule = "GPT2Tokenizer (vocab.json + merges.txt): BOS only with add_bos_token";
  PreStep s;
  s.byte_level = true;
  s.add_prefix_space = json_bool(config, "add_prefix_space", false, "tokenizer_config.json");
  s.regex = std::make_shared<Regex>(kGpt2Pattern, false, m->source);
  m->pre_steps.push_back(std::move(s));

  // Special tokens: the config's added_tokens_decoder, then bos/eos/unk/pad (GPT-2 default "<|endoftext|>").
  if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
    for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
      AddedToken t = parse_added_token(it.value(), "tokenizer_config.json: added_tokens_decoder");
      try {
        t.id = std::stoi(it.key());
      } catch (const std::exception&) {
        throw ModelError("tokenizer_config.json: added_tokens_decoder key '" + it.key() + "' is not an id");
      }
      m->added.push_back(t);
    }
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    std::optional<std::string> name = config_token(config, key);
    if (!config.contains(key) && key != std::string("pad_token")) name = "<|endoftext|>";
    if (!name) continue;
    const bool known = std::any_of(m->added.begin(), m->added.end(),
                                   [&](const AddedToken& t) { return t.content == *name; });
    const int32_t id = m->vocab.find(*name);
    if (known || id < 0) continue;
    AddedToken t;
    t.content = *name;
    t.id = id;
    t.special = true;
    m->added.push_back(t);
  }
  m->finish(m->source);
  // GPT2Tokenizer's bos/eos default to "<|endoftext|>"; an explicit null in the config means none.
  for (const char* key : {"bos_token", "eos_token"}) {
    std::optional<std::string> name = config_token(config, key);
    if (!config.contains(key)) name = "<|endoftext|>";
    (key == std::string("bos_token") ? m->bos : m->eos) = name ? m->token_to_id(*name) : std::nullopt;
  }
  if (json_bool(config, "add_bos_token", false, "tokenizer_config.json") && m->bos) {
    m->templates.push_back(Template{{*m->bos}, {}});
  }
  return std::make_unique<BpeTokenizer>(std::move(m));
}

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::filesystem::path& model_dir) {
  if (std::filesystem::exists(model_dir / "tokenizer.json")) return load_tokenizer_json(model_dir);
  const bool has_vocab = std::filesystem::exists(model_dir / "vocab.json");
  const bool has_merges = std::filesystem::exists(model_dir / "merges.txt");
  if (has_vocab && has_merges) return load_vocab_merges(model_dir);
  if (has_vocab != has_merges && !std::filesystem::exists(model_dir / "tokenizer.model")) {
    throw ModelError((model_dir / (has_vocab ? "vocab.json" : "merges.txt")).string() + ": found without " +
                     (has_vocab ? "merges.txt" : "vocab.json") + "; a GPT-2 style BPE tokenizer needs both");
  }
  return nullptr;
}

}  // namespace lens
