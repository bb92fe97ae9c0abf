// Reader for the safetensors format: the file is mmap'ed once and tensors are returned as zero-copy
// views into the mapping (copied only when the data is misaligned for its dtype). The header is
// validated in full before any tensor is handed out. Writing is provided for tools and tests.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lens {

/// One entry of a safetensors header. Offsets are relative to the start of the data section.
struct TensorInfo {
  std::string name;
  std::string dtype;            // "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;           // byte offset into the data section
  uint64_t end = 0;             // one past the last byte
};

/// Bytes per element of a safetensors dtype string; 0 when the dtype is unknown.
int dtype_size(const std::string& dtype);

/// An open, validated, memory-mapped safetensors file. Tensor views keep the mapping alive.
class SafeTensorsFile {
 public:
  /// Maps and validates `path`. Throws ModelError naming the file (and tensor) on any defect:
  /// short file, header length out of bounds, non-JSON header, unknown dtype, shape x dtype size
  /// not equal to the byte span, offsets outside the data section, overlapping entries.
  static std::shared_ptr<SafeTensorsFile> open(const std::filesystem::path& path);
  ~SafeTensorsFile();

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;

  /// The named tensor as a CPU view of the mapped bytes (F32/F16/BF16, also I64/I32/U8/BOOL/F64).
  /// Writing into the view never reaches the file (private mapping).
  at::Tensor tensor(const std::string& name) const;

  /// Size in bytes of the data section (all tensors).
  uint64_t data_bytes() const { return data_size_; }

 private:
  SafeTensorsFile() = default;
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafeTensorsFile> self_;
};

/// Writes tensors (made contiguous, CPU) to `path` atomically (temp file + rename).
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace lens
