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

/// Resolves `spec` locally, never over the network (see lens/hub.h for that). `spec` may end in
/// "@revision" for a repo id or alias: then only the Hugging Face cache's refs/<revision> or
/// snapshots/<revision> count. Throws ModelError explaining every place it looked when nothing matches.
ResolvedModel resolve_model(const std::string& spec);

/// Splits "org/name@revision" into the name and the revision ("" when there is no '@').
void split_revision(const std::string& spec, std::string* name, std::string* revision);

/// The Hugging Face cache directories, in lookup order ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub);
/// downloads go to the first.
std::vector<std::filesystem::path> hf_cache_dirs();

/// "models--org--name", the cache folder of a repo id.
std::string hf_repo_folder(const std::string& repo);

/// Every model that resolves: registry aliases found locally, every checkpoint directory in
/// $LENS_MODEL_PATH, every snapshot in the Hugging Face cache. Also lists aliases not found
/// (path empty) so users see what could be added.
std::vector<ResolvedModel> list_models();

}  // namespace lens
