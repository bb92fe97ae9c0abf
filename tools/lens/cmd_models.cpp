// `lens models`: every model that resolves (registry aliases, $LENS_MODEL_PATH, the Hugging Face
// cache), with its architecture and whether lens supports it.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "arch/arch.h"
#include "commands.h"
#include "lens/output.h"
#include "lens/registry.h"

namespace lens::cli {

namespace {

struct ModelsOptions {
  bool json = false;
  bool all = false;
};

// Architecture named by a checkpoint's config.json ("" when unreadable).
std::string read_architecture(const std::filesystem::path& dir, bool* supported) {
  *supported = false;
  try {
    std::ifstream in(dir / "config.json");
    auto j = nlohmann::json::parse(in);
    *supported = find_arch(j) != nullptr;
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
      return j["architectures"][0].get<std::string>();
    return j.value("model_type", "");
  } catch (const std::exception&) {
    return "(unreadable config.json)";
  }
}

void run_models(const ModelsOptions& o) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& m : list_models()) {
    bool supported = false;
    std::string arch;
    if (!m.path.empty()) {
      arch = read_architecture(m.path, &supported);
    } else {
      if (!o.all) continue;
      for (const auto& e : registry())
        if (e.alias == m.name) arch = e.architecture;
      supported = find_arch(nlohmann::json{{"architectures", {arch}}}) != nullptr;
    }
    rows.push_back({{"name", m.name}, {"repo", m.repo}, {"path", m.path.string()}, {"source", m.source},
                    {"architecture", arch}, {"supported", supported}, {"found", !m.path.empty()}});
  }
  nlohmann::json families = nlohmann::json::array();
  for (const auto& a : arch_table())
    families.push_back({{"family", a.name}, {"architectures", a.hf_architectures}, {"parity_checked", a.parity_checked}});
  if (o.json) {
    nlohmann::json doc = {{"schema_version", kSchemaVersion}, {"models", rows}};
    if (o.all) doc["families"] = families;
    std::cout << dump_json(doc, 2) << std::endl;
    return;
  }
  if (o.all) {
    std::cout << fmt::format("{:<18} {:<28} {}\n", "FAMILY", "ARCHITECTURES", "PARITY CHECKED (transformers)");
    for (const auto& f : families) {
      std::string archs;
      for (const auto& a : f["architectures"]) archs += (archs.empty() ? "" : ", ") + a.get<std::string>();
      std::cout << fmt::format("{:<18} {:<28} {}\n", f["family"].get<std::string>(), archs,
                               f["parity_checked"].get<std::string>());
    }
    std::cout << "\n";
  }
  if (rows.empty()) {
    std::cout << "no models found. Set LENS_MODEL_PATH to a directory of Hugging Face checkpoints, or use the "
                 "Hugging Face cache; 'lens models --all' lists the known aliases.\n";
    return;
  }
  std::cout << fmt::format("{:<22} {:<24} {:<9} {:<16} {}\n", "NAME", "ARCHITECTURE", "SUPPORTED", "SOURCE", "PATH");
  for (const auto& r : rows) {
    std::cout << fmt::format("{:<22} {:<24} {:<9} {:<16} {}\n", r["name"].get<std::string>(),
                             r["architecture"].get<std::string>(), r["supported"].get<bool>() ? "yes" : "no",
                             r["found"].get<bool>() ? r["source"].get<std::string>() : "(not found)",
                             r["path"].get<std::string>());
  }
}

}  // namespace

void setup_models(CLI::App& app) {
  auto opts = std::make_shared<ModelsOptions>();
  auto* cmd = app.add_subcommand("models", "List models that resolve, with architecture and support");
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->add_flag("--all", opts->all,
                "Also list registry aliases that are not found locally, and every supported family with the "
                "transformers release its parity was checked against");
  cmd->callback([opts] { run_models(*opts); });
}

}  // namespace lens::cli
