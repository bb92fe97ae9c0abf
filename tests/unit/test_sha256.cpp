// SHA-256 (src/util/sha256.cpp) against FIPS 180-4 / NIST test vectors and Python's hashlib, fed in
// one piece and in uneven chunks that cross the 64-byte block boundary.
#include <gtest/gtest.h>

#include <string>

#include "util/sha256.h"

namespace lens {
namespace {

std::string sha256_hex(const std::string& s, size_t chunk) {
  Sha256 h;
  for (size_t i = 0; i < s.size(); i += chunk) h.update(s.data() + i, std::min(chunk, s.size() - i));
  return h.hex();
}

TEST(Sha256, KnownVectors) {
  const std::string million_a(1000000, 'a');
  const std::pair<std::string, std::string> cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",  // 56 bytes: padding spills a block
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {million_a, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const auto& [text, want] : cases)
    for (size_t chunk : {size_t(1), size_t(63), size_t(64), size_t(1000), size_t(1) << 20})
      EXPECT_EQ(sha256_hex(text, chunk), want) << text.size() << " bytes in chunks of " << chunk;
}

}  // namespace
}  // namespace lens
