// safetensors reader on well-formed and malformed files: every defect gives a ModelError that
// names the file (and the tensor when there is one), never a crash.
#include <filesystem>
#include <fstream>

#include "lens/error.h"
#include "lens/safetensors.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lens_st_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes <8-byte length><header><data>; `length` overrides the stated header length.
  fs::path write_raw(const std::string& header, const std::string& data, int64_t length = -1) {
    const fs::path p = dir_ / "t.safetensors";
    std::ofstream out(p, std::ios::binary);
    uint64_t n = length >= 0 ? static_cast<uint64_t>(length) : header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << header << data;
    return p;
  }

  void expect_error(const fs::path& p, const std::string& fragment) {
    try {
      SafeTensorsFile::open(p);
      ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const ModelError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripIsZeroCopyAndExact) {
  at::Tensor a = at::arange(12, at::kFloat).view({3, 4});
  at::Tensor b = at::randn({5}).to(at::kBFloat16);
  const fs::path p = dir_ / "ok.safetensors";
  write_safetensors(p, {{"a", a}, {"b", b}}, {{"format", "pt"}});
  auto f = SafeTensorsFile::open(p);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  at::Tensor ra = f->tensor("a");
  EXPECT_TRUE(ra.equal(a));
  EXPECT_TRUE(f->tensor("b").equal(b));
  // The view points into the mapping, not a copy: its data lies within the mapped data section.
  EXPECT_EQ(f->data_bytes(), 12u * 4 + 5u * 2);
  f.reset();
  EXPECT_TRUE(ra.equal(a));  // the view keeps the mapping alive
  EXPECT_FALSE(fs::exists(p.string() + ".tmp." + std::to_string(::getpid())));
}

TEST_F(SafetensorsTest, MissingTensorNamesFileAndTensor) {
  const fs::path p = dir_ / "ok.safetensors";
  write_safetensors(p, {{"a", at::zeros({2})}});
  auto f = SafeTensorsFile::open(p);
  try {
    f->tensor("nope");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

TEST_F(SafetensorsTest, ShorterThanHeaderLength) {
  const fs::path p = dir_ / "t.safetensors";
  std::ofstream(p, std::ios::binary) << "abc";
  expect_error(p, "shorter than the 8-byte header length");
}

TEST_F(SafetensorsTest, LyingHeaderLength) {
  expect_error(write_raw("{}", "", 1000), "out of bounds");
  expect_error(write_raw("{}", "", int64_t(1) << 40), "out of bounds");
  expect_error(write_raw("{}", "", 0), "out of bounds");
}

TEST_F(SafetensorsTest, NonJsonHeader) { expect_error(write_raw("not json at all", ""), "not valid JSON"); }

TEST_F(SafetensorsTest, HeaderNotAnObject) { expect_error(write_raw("[1,2]", ""), "not a JSON object"); }

TEST_F(SafetensorsTest, TruncatedData) {
  expect_error(write_raw(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')),
               "beyond the data section");
}

TEST_F(SafetensorsTest, OutOfRangeOffsets) {
  expect_error(write_raw(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[100,104]}})", std::string(8, '\0')), "'w'");
}

TEST_F(SafetensorsTest, BeginAfterEnd) {
  expect_error(write_raw(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", std::string(8, '\0')), "begin");
}

TEST_F(SafetensorsTest, WrongDtypeSize) {
  // 3 F32 values need 12 bytes, the offsets give 8.
  expect_error(write_raw(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
               "shape x dtype size");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  expect_error(write_raw(R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')),
               "unknown dtype");
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  expect_error(write_raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         std::string(12, '\0')),
               "overlap");
  // Overlap with an entry that is not the immediate predecessor by offset.
  expect_error(write_raw(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                         R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                         std::string(16, '\0')),
               "overlap");
}

TEST_F(SafetensorsTest, MalformedEntries) {
  expect_error(write_raw(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')),
               "negative");
  expect_error(write_raw(R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')), "data_offsets");
  expect_error(write_raw(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", std::string(4, '\0')),
               "data_offsets");
  expect_error(write_raw(R"({"__metadata__":{"a":1}})", ""), "__metadata__");
}

}  // namespace
}  // namespace lens
