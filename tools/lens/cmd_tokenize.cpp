// `lens tokenize --model M TEXT`: the ids and pieces the model's tokenizer gives for TEXT, as a
// table or JSON. Uses exactly the tokenizer `lens run --prompt` uses.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "lens/error.h"
#include "lens/output.h"
#include "lens/registry.h"
#include "lens/tokenizer.h"

namespace lens::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
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
    m = resolve_model(o.model);
  }
  auto tok = load_tokenizer(m.path);
  if (!tok) throw ModelError(m.path.string() + " has no tokenizer files (tokenizer.json, vocab.json + merges.txt, tokenizer.model)");
  const std::vector<int64_t> ids = tok->encode(o.text, !o.no_special);
  if (o.json) {
    nlohmann::json j{{"schema_version", kSchemaVersion}, {"model", m.name}, {"tokenizer", tok->kind()},
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
  cmd->add_option("text", o->text, "Text to tokenize")->required();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_flag("--no-special", o->no_special, "Do not add special tokens (BOS)");
  cmd->callback([o] { run_tokenize(*o); });
}

}  // namespace lens::cli
