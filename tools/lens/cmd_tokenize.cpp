// `lens tokenize --model M TEXT`: the ids and pieces the model's tokenizer gives for TEXT, as a
// table or JSON. Uses exactly the tokenizer `lens run --prompt` uses. `--file FILE` tokenizes many texts
// in one process (one per line; a .jsonl file holds {"text": ...} objects) and writes JSONL to stdout.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "lens/error.h"
#include "lens/hub.h"
#include "lens/output.h"
#include "lens/registry.h"
#include "lens/tokenizer.h"

namespace lens::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool json = false;
  bool no_special = false;
  bool timings = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_tokenize(const TokenizeOptions& o) {
  // A tokenizer-only directory (no config.json) is fine here; anything else resolves as a model.
  ResolvedModel m;
  if (std::filesystem::is_directory(o.model) && !std::filesystem::exists(std::filesystem::path(o.model) / "config.json")) {
    m.path = o.model;
    m.name = std::filesystem::path(o.model).filename().string();
  } else {
    m = resolve_or_download(o.model, hub_options_from_env(is_quiet()));
  }
  const auto t_load = std::chrono::steady_clock::now();
  auto tok = load_tokenizer(m.path);
  const double load_s = seconds_since(t_load);
  if (!tok) throw ModelError(m.path.string() + " has no tokenizer files (tokenizer.json, vocab.json + merges.txt, tokenizer.model)");
  const std::string rule = o.no_special ? "none (--no-special)" : tok->special_rule();
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) throw InputError(o.file + ": cannot open");
    const bool jsonl = std::filesystem::path(o.file).extension() == ".jsonl";
    std::string line;
    double encode_s = 0;
    size_t n_texts = 0, n_bytes = 0, n_tokens = 0;
    for (size_t n = 1; std::getline(in, line); ++n) {
      std::string text = line;
      if (jsonl) {
        if (line.empty()) continue;
        nlohmann::json row;
        try {
          row = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
          throw InputError(o.file + ":" + std::to_string(n) + ": not JSON: " + e.what());
        }
        if (!row.is_object() || !row.contains("text") || !row["text"].is_string())
          throw InputError(o.file + ":" + std::to_string(n) + ": expected an object with a string \"text\"");
        text = row["text"].get<std::string>();
      }
      const auto t_encode = std::chrono::steady_clock::now();
      std::vector<int64_t> ids = tok->encode(text, !o.no_special);
      encode_s += seconds_since(t_encode);
      ++n_texts, n_bytes += text.size(), n_tokens += ids.size();
      nlohmann::json r{{"schema_version", kSchemaVersion}, {"line", n}, {"ids", std::move(ids)}};
      std::cout << dump_json(r, -1) << '\n';
    }
    std::cout.flush();
    if (o.timings) {
      std::cerr << fmt::format("timings: load_s {:.4f} encode_s {:.4f} texts {} bytes {} tokens {}\n", load_s,
                               encode_s, n_texts, n_bytes, n_tokens);
    }
    return;
  }
  const auto t_encode = std::chrono::steady_clock::now();
  const std::vector<int64_t> ids = tok->encode(o.text, !o.no_special);
  if (o.timings) {
    std::cerr << fmt::format("timings: load_s {:.4f} encode_s {:.4f} texts 1 bytes {} tokens {}\n", load_s,
                             seconds_since(t_encode), o.text.size(), ids.size());
  }
  if (o.json) {
    nlohmann::json j{{"schema_version", kSchemaVersion}, {"model", m.name}, {"tokenizer", tok->kind()},
                     {"special_rule", rule},
                     {"ids", ids}, {"pieces", nlohmann::json::array()}, {"text", nlohmann::json::array()}};
    for (int64_t id : ids) {
      j["pieces"].push_back(tok->piece(id));
      j["text"].push_back(tok->token_text(id));
    }
    j["decoded"] = tok->decode(ids);
    std::cout << dump_json(j, 2) << std::endl;
    return;
  }
  std::cout << fmt::format("{} tokens ({} tokenizer)\n", ids.size(), tok->kind());
  for (size_t i = 0; i < ids.size(); ++i)
    std::cout << fmt::format("{:>5} {:>8}  {}\n", i, ids[i], dump_json(nlohmann::json(tok->piece(ids[i]))));
}

}  // namespace

void setup_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
  cmd->add_option("-m,--model", o->model, "Model directory, alias or HF repo id")->required();
  auto* text = cmd->add_option("text", o->text, "Text to tokenize");
  auto* file = cmd->add_option("--file", o->file,
                               "Tokenize each line of FILE (a .jsonl file: each object's \"text\"); JSONL out")
                   ->check(CLI::ExistingFile);
  text->excludes(file);
  cmd->callback([o, text, file] {
    if (text->count() == 0 && file->count() == 0) throw CLI::RequiredError("text or --file");
    run_tokenize(*o);
  });
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_flag("--no-special", o->no_special, "Do not add special tokens (BOS)");
  cmd->add_flag("--timings", o->timings,
                "Print tokenizer load and encode seconds (encode calls only, no output) to stderr");

}

}  // namespace lens::cli
