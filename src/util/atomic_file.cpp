// Atomic output files (temp file + rename); see atomic_file.h.
#include "util/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lens/error.h"

namespace lens {

AtomicFile::AtomicFile(const std::filesystem::path& path, bool binary) : path_(path) {
  tmp_ = path;
  tmp_ += ".tmp." + std::to_string(::getpid());
  out_.open(tmp_, binary ? std::ios::binary | std::ios::trunc : std::ios::trunc);
  if (!out_) throw InputError("cannot write " + path.string() + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
  }
}

void AtomicFile::commit() {
  out_.flush();
  const bool ok = static_cast<bool>(out_);
  out_.close();
  if (!ok) throw Error("write error on " + tmp_.string() + " (disk full?)");
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) throw Error("cannot rename " + tmp_.string() + " to " + path_.string() + ": " + ec.message());
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& content) {
  AtomicFile f(path);
  f.stream().write(content.data(), content.size());
  f.commit();
}

}  // namespace lens
