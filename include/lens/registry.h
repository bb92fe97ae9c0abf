// Model resolution: a directory path, an alias from models/registry.json (compiled in), a
// Hugging Face repo id; each looked up in $LENS_MODEL_PATH and the Hugging Face cache
// ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub: models--org--name/snapshots/<rev>).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lens {

struct RegistryEntry {
  std::string alias;
  std::string repo;          // Hugging Face repo id "org/name"
  std::string architecture;  // expected config.json architecture
};

/// The alias table (models/registry.json).
const std::vector<RegistryEntry>& registry();

struct ResolvedModel {
  std::string name;             // alias, repo id or directory name
  std::string repo;             // repo id when known
  std::filesystem::path path;   // directory with config.json
  std::string source;           // "path", "LENS_MODEL_PATH", "hf-cache"
};

/// Resolves `spec`; throws ModelError explaining every place it looked when nothing matches.
ResolvedModel resolve_model(const std::string& spec);

/// Every model that resolves: registry aliases found locally, every checkpoint directory in
/// $LENS_MODEL_PATH, every snapshot in the Hugging Face cache. Also lists aliases not found
/// (path empty) so users see what could be added.
std::vector<ResolvedModel> list_models();

}  // namespace lens
