// Checkpoint directory: single-file or sharded safetensors (see checkpoint.h).
#include "io/checkpoint.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "lens/error.h"

namespace lens {

namespace fs = std::filesystem;

Checkpoint Checkpoint::open(const fs::path& dir) {
  Checkpoint ck;
  ck.dir_ = dir;
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  std::vector<std::string> shard_names;
  if (fs::exists(single)) {
    shard_names.push_back("model.safetensors");
  } else if (fs::exists(index)) {
    nlohmann::json j;
    try {
      std::ifstream in(index);
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw ModelError(index.string() + ": not valid JSON: " + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw ModelError(index.string() + ": no weight_map object");
    std::set<std::string> seen;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw ModelError(index.string() + ": weight_map['" + it.key() + "'] is not a file name");
      const std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos) throw ModelError(index.string() + ": shard name '" + f + "' has a path");
      if (seen.insert(f).second) shard_names.push_back(f);
    }
    if (shard_names.empty()) throw ModelError(index.string() + ": weight_map is empty");
  } else {
    throw ModelError(dir.string() + ": no model.safetensors or model.safetensors.index.json "
                     "(only safetensors checkpoints are supported; convert .bin files with transformers' save_pretrained)");
  }
  for (const auto& name : shard_names) {
    auto f = SafeTensorsFile::open(dir / name);
    for (const auto& t : f->tensors()) {
      auto [it, inserted] = ck.where_.emplace(t.name, f);
      if (!inserted)
        throw ModelError(dir.string() + ": tensor '" + t.name + "' appears in both " +
                         it->second->path().filename().string() + " and " + name);
    }
    ck.files_.push_back(std::move(f));
  }
  return ck;
}

at::Tensor Checkpoint::get(const std::string& name, const std::vector<int64_t>& expected) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw ModelError(dir_.string() + ": checkpoint has no tensor '" + name + "'");
  at::Tensor t = it->second->tensor(name);
  if (!expected.empty() && t.sizes().vec() != expected) {
    throw ModelError(it->second->path().string() + ": tensor '" + name + "' has shape " +
                     c10::str(t.sizes()) + ", config.json implies " + c10::str(at::IntArrayRef(expected)));
  }
  return t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

uint64_t Checkpoint::data_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->data_bytes();
  return n;
}

std::string Checkpoint::main_dtype() const {
  std::map<std::string, uint64_t> bytes;
  for (const auto& f : files_)
    for (const auto& t : f->tensors()) bytes[t.dtype] += t.end - t.begin;
  std::string best = "F32";
  uint64_t most = 0;
  for (const auto& [d, n] : bytes)
    if (n > most) best = d, most = n;
  return best;
}

}  // namespace lens
