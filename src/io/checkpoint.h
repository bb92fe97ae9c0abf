// A Hugging Face checkpoint directory's tensors: model.safetensors, or shards listed in
// model.safetensors.index.json. Lookups name the file and tensor in every error.
// Does not know about architectures; src/arch maps names to model slots.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lens/safetensors.h"

namespace lens {

class Checkpoint {
 public:
  /// Opens every shard of the checkpoint in `dir` (validating each header).
  static Checkpoint open(const std::filesystem::path& dir);

  bool has(const std::string& name) const { return where_.count(name) > 0; }
  /// The tensor `name` as a zero-copy view; throws ModelError if missing or if its shape differs
  /// from `expected` (when `expected` is not empty).
  at::Tensor get(const std::string& name, const std::vector<int64_t>& expected = {}) const;
  std::vector<std::string> names() const;
  /// Total bytes of all tensor data (the weight bytes).
  uint64_t data_bytes() const;
  /// The safetensors dtype most tensors use ("F32", "BF16", ...).
  std::string main_dtype() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::vector<std::shared_ptr<SafeTensorsFile>> files_;
  std::map<std::string, std::shared_ptr<SafeTensorsFile>> where_;
};

}  // namespace lens
