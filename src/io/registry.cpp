// Model resolution (see lens/registry.h). Search order for a spec that is not a directory:
// alias -> repo id; then $LENS_MODEL_PATH entries (<dir>/<alias>, <dir>/<name>, <dir>/<org>--<name>,
// <dir>/<org>/<name>, or an HF cache layout inside it); then the Hugging Face cache.
#include "lens/registry.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lens/error.h"

namespace lens {

extern const char* const kRegistryJson;

namespace fs = std::filesystem;

const std::vector<RegistryEntry>& registry() {
  static const std::vector<RegistryEntry> kEntries = [] {
    std::vector<RegistryEntry> out;
    const auto j = nlohmann::json::parse(kRegistryJson);
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_object()) continue;  // "_comment"
      out.push_back({it.key(), it.value().value("repo", ""), it.value().value("architecture", "")});
    }
    return out;
  }();
  return kEntries;
}

namespace {

bool is_checkpoint_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::exists(p / "config.json", ec);
}

std::vector<fs::path> model_path_dirs() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("LENS_MODEL_PATH")) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':'))
      if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

}  // namespace

std::vector<fs::path> hf_cache_dirs() {
  std::vector<fs::path> out;
  if (const char* c = std::getenv("HF_HUB_CACHE"); c && *c) out.emplace_back(c);
  if (const char* h = std::getenv("HF_HOME"); h && *h) out.push_back(fs::path(h) / "hub");
  if (const char* home = std::getenv("HOME")) out.push_back(fs::path(home) / ".cache" / "huggingface" / "hub");
  return out;
}

std::string hf_repo_folder(const std::string& repo) {
  std::string folder = "models--" + repo;
  for (size_t i; (i = folder.find('/')) != std::string::npos;) folder.replace(i, 1, "--");
  return folder;
}

namespace {

// models--org--name/snapshots/<commit>. No revision: the commit refs/main names, else the newest
// snapshot. A revision: refs/<revision> (a branch or tag), else snapshots/<revision> (a commit).
fs::path hf_snapshot(const fs::path& cache, const std::string& repo, const std::string& revision = "") {
  const fs::path root = cache / hf_repo_folder(repo);
  std::error_code ec;
  if (!fs::is_directory(root / "snapshots", ec)) return {};
  std::ifstream ref(root / "refs" / (revision.empty() ? "main" : revision));
  std::string rev;
  if (ref && std::getline(ref, rev) && is_checkpoint_dir(root / "snapshots" / rev)) return root / "snapshots" / rev;
  if (!revision.empty()) {
    if (revision.find('/') == std::string::npos && is_checkpoint_dir(root / "snapshots" / revision))
      return root / "snapshots" / revision;
    return {};
  }
  fs::path best;
  fs::file_time_type newest{};
  for (const auto& e : fs::directory_iterator(root / "snapshots", ec)) {
    if (!is_checkpoint_dir(e.path())) continue;
    auto t = fs::last_write_time(e.path(), ec);
    if (best.empty() || t > newest) best = e.path(), newest = t;
  }
  return best;
}

const RegistryEntry* find_alias(const std::string& spec) {
  for (const auto& e : registry())
    if (e.alias == spec) return &e;
  return nullptr;
}

// Looks up `alias` (may be empty) / `repo` in one $LENS_MODEL_PATH directory.
fs::path find_in_dir(const fs::path& dir, const std::string& alias, const std::string& repo) {
  std::vector<fs::path> tries;
  if (!alias.empty()) tries.push_back(dir / alias);
  if (!repo.empty()) {
    const auto slash = repo.find('/');
    tries.push_back(dir / repo);  // <dir>/<org>/<name>
    if (slash != std::string::npos) {
      tries.push_back(dir / (repo.substr(0, slash) + "--" + repo.substr(slash + 1)));
      tries.push_back(dir / repo.substr(slash + 1));
    }
  }
  for (const auto& t : tries)
    if (is_checkpoint_dir(t)) return t;
  if (!repo.empty()) return hf_snapshot(dir, repo);  // a cache layout inside the directory
  return {};
}

}  // namespace

void split_revision(const std::string& spec, std::string* name, std::string* revision) {
  const auto at = spec.rfind('@');
  *name = at == std::string::npos ? spec : spec.substr(0, at);
  *revision = at == std::string::npos ? "" : spec.substr(at + 1);
}

ResolvedModel resolve_model(const std::string& full_spec) {
  if (full_spec.empty()) throw UsageError("--model is empty");
  std::error_code ec;
  if (fs::is_directory(full_spec, ec)) {
    if (!fs::exists(fs::path(full_spec) / "config.json"))
      throw ModelError(full_spec + ": directory has no config.json (not a Hugging Face checkpoint)");
    fs::path p = fs::absolute(full_spec);
    return {p.filename().string(), "", p, "path"};
  }
  std::string spec, revision;
  split_revision(full_spec, &spec, &revision);
  if (spec.empty() || (full_spec.find('@') != std::string::npos && revision.empty()))
    throw UsageError("--model '" + full_spec + "': expected org/name@revision");
  const RegistryEntry* alias = find_alias(spec);
  const std::string repo = alias ? alias->repo : (spec.find('/') != std::string::npos ? spec : "");
  const std::string alias_name = alias ? alias->alias : (repo.empty() ? spec : "");
  if (!revision.empty() && repo.empty())
    throw UsageError("--model '" + full_spec + "': @revision needs a repo id (org/name) or an alias of one");
  if (revision.empty()) {  // a revision is a Hub notion: $LENS_MODEL_PATH directories have none
    for (const auto& dir : model_path_dirs()) {
      fs::path p = find_in_dir(dir, alias_name, repo);
      if (!p.empty()) return {spec, repo, fs::absolute(p), "LENS_MODEL_PATH"};
    }
  }
  if (!repo.empty()) {
    for (const auto& cache : hf_cache_dirs()) {
      fs::path p = hf_snapshot(cache, repo, revision);
      if (!p.empty()) return {spec, repo, p, "hf-cache"};
    }
  }
  std::string msg = "model '" + full_spec + "' not found: ";
  if (!alias && repo.empty()) {
    std::string known;
    for (const auto& e : registry()) known += (known.empty() ? "" : ", ") + e.alias;
    msg += "not a directory, not an alias (known: " + known + ") and not a repo id (org/name)";
    if (model_path_dirs().empty()) throw ModelError(msg);
    msg += ", and no '" + spec + "' in $LENS_MODEL_PATH";
    throw ModelError(msg);
  }
  msg += (alias ? "alias for " + repo + "; " : "") + std::string("looked in ");
  msg += model_path_dirs().empty() ? "$LENS_MODEL_PATH (unset)" : "$LENS_MODEL_PATH";
  msg += " and the Hugging Face cache (";
  bool first = true;
  for (const auto& c : hf_cache_dirs()) msg += (first ? "" : ", ") + c.string(), first = false;
  msg += "); download it with 'lens download " + repo + "' (or unset HF_HUB_OFFLINE) or pass a directory";
  throw ModelError(msg);
}

std::vector<ResolvedModel> list_models() {
  std::vector<ResolvedModel> out;
  std::set<fs::path> seen;
  auto add = [&](ResolvedModel m) {
    if (!m.path.empty()) {
      m.path = fs::weakly_canonical(m.path);
      if (!seen.insert(m.path).second) return;
    }
    out.push_back(std::move(m));
  };
  for (const auto& e : registry()) {
    try {
      add(resolve_model(e.alias));
    } catch (const ModelError&) {
      add({e.alias, e.repo, {}, ""});
    }
  }
  std::error_code ec;
  for (const auto& dir : model_path_dirs()) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (is_checkpoint_dir(e.path())) add({e.path().filename().string(), "", e.path(), "LENS_MODEL_PATH"});
    }
  }
  for (const auto& cache : hf_cache_dirs()) {
    for (const auto& e : fs::directory_iterator(cache, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("models--", 0) != 0) continue;
      std::string repo = n.substr(8);
      const auto dd = repo.find("--");
      if (dd != std::string::npos) repo.replace(dd, 2, "/");
      fs::path snap = hf_snapshot(cache, repo);
      if (!snap.empty()) add({repo, repo, snap, "hf-cache"});
    }
  }
  return out;
}

}  // namespace lens
