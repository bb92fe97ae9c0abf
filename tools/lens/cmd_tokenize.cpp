// `lens tokenize --model M TEXT`: the ids and pieces the model's tokenizer gives for TEXT, as a
// table or JSON. Uses exactly the tokenizer `lens run --prompt` uses. `--file FILE` tokenizes many texts
// in one process (one per line; a .jsonl file holds {"text": ...} objects) and writes JSONL to stdout.
#include <fmt/format.h>

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
};

void run_tokenize(const TokenizeOptions& o) {
  // A tokenizer-only directory (no config.json) is fine here; anything else resolves as a model.
  ResolvedModel m;
  if (std::filesystem::is_directory(o.model) && !std::filesystem::exists(std::filesystem::path(o.model) / "config.json")) {
    m.path = o.model;
    m.name = std::filesystem::path(o.model).filename().string();
  } else {
    m = resolve_or_download(o.model, hub_options_from_env(is_quiet()));
  }
  auto tok = load_tokenizer(m.path);
  if (!tok) throw ModelError(m.path.string() + " has no tokenizer files (tokenizer.json, vocab.json + merges.txt, tokenizer.model)");
  const std::string rule = o.no_special ? "none (--no-special)" : tok->special_rule();
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) throw InputError(o.file + ": cannot open");
    const bool jsonl = std::filesystem::path(o.file).extension() == ".jsonl";
    std::string line;
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
      nlohmann::json r{{"schema_version", kSchemaVersion}, {"line", n}, {"ids", tok->encode(text, !o.no_special)}};
      std::cout << dump_json(r, -1) << '\n';
    }
    std::cout.flush();
    return;
  }
  const std::vector<int64_t> ids = tok->encode(o.text, !o.no_special);
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

}

}  // namespace lens::cli
