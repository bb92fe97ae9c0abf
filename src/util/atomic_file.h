// Output files that appear whole or not at all: data goes to "<path>.tmp.<pid>", and commit()
// flushes and renames it over <path>. Destroying an uncommitted AtomicFile removes the temp file,
// so an error (or exception) never leaves a half-written output behind.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace lens {

class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& path, bool binary = true);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return out_; }
  /// Flushes, checks for write errors, and renames into place. Throws Error on failure.
  void commit();

 private:
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

/// Writes `content` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

}  // namespace lens
