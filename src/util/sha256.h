// SHA-256 (FIPS 180-4), streaming: enough to verify downloaded LFS blobs against their etag
// without a crypto library. Not constant-time and not meant for anything secret.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lens {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  /// Lower-case hex digest; the object must not be updated afterwards.
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

}  // namespace lens
