// safetensors reader (mmap, validated header, zero-copy views) and an atomic writer.
// Format: 8-byte little-endian header length N, N bytes of JSON, then the data section.
// Does not convert dtypes: callers cast views as they need.
#include "lens/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lens/error.h"
#include "util/atomic_file.h"

namespace lens {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MiB, the bound the reference reader uses

at::ScalarType scalar_type(const std::string& dtype) {
  if (dtype == "F32") return at::kFloat;
  if (dtype == "F16") return at::kHalf;
  if (dtype == "BF16") return at::kBFloat16;
  if (dtype == "F64") return at::kDouble;
  if (dtype == "I64") return at::kLong;
  if (dtype == "I32") return at::kInt;
  if (dtype == "I16") return at::kShort;
  if (dtype == "I8") return at::kChar;
  if (dtype == "U8") return at::kByte;
  if (dtype == "BOOL") return at::kBool;
  throw ModelError("unsupported safetensors dtype " + dtype);
}

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kDouble: return "F64";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: throw Error(std::string("cannot write dtype ") + c10::toString(t) + " to safetensors");
  }
}

}  // namespace

int dtype_size(const std::string& dtype) {
  static const std::map<std::string, int> kSizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
      {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::filesystem::path& path) {
  const std::string where = path.string() + ": ";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelError(where + "cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw ModelError(where + "cannot stat: " + std::strerror(errno));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw ModelError(where + "not a safetensors file: " + std::to_string(file_size) +
                     " bytes, shorter than the 8-byte header length");
  }
  // PROT_WRITE with MAP_PRIVATE: pages stay shared with the page cache until written (never, by us).
  void* map = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw ModelError(where + "mmap failed: " + std::strerror(errno));
#ifdef MADV_POPULATE_READ
  // Map the (page-cached) file up front in one call instead of one page fault per 4 KiB page
  // during the first forward pass; read-only population shares the pages (no copy-on-write).
  // Best effort: older kernels refuse it and the pages fault in on first use as before.
  (void)madvise(map, file_size, MADV_POPULATE_READ);
#endif

  std::shared_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->self_ = f;
  f->path_ = path;
  f->map_ = map;
  f->map_size_ = file_size;
  const auto* bytes = static_cast<const uint8_t*>(map);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n == 0 || n > kMaxHeaderBytes || n > file_size - 8) {
    throw ModelError(where + "header length " + std::to_string(n) + " is out of bounds (file has " +
                     std::to_string(file_size) + " bytes; limit " + std::to_string(kMaxHeaderBytes) + ")");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(where + "header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw ModelError(where + "header is not a JSON object");
  f->data_ = bytes + 8 + n;
  f->data_size_ = file_size - 8 - n;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw ModelError(where + "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw ModelError(where + "__metadata__ value for '" + m.key() + "' is not a string");
        f->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string at_tensor = where + "tensor '" + name + "': ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw ModelError(at_tensor + "entry needs dtype, shape and data_offsets");
    const auto& jd = v["dtype"];
    const auto& js = v["shape"];
    const auto& jo = v["data_offsets"];
    if (!jd.is_string()) throw ModelError(at_tensor + "dtype is not a string");
    TensorInfo info;
    info.name = name;
    info.dtype = jd.get<std::string>();
    const int esize = dtype_size(info.dtype);
    if (esize == 0) throw ModelError(at_tensor + "unknown dtype '" + info.dtype + "'");
    if (!js.is_array()) throw ModelError(at_tensor + "shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : js) {
      if (!d.is_number_unsigned()) throw ModelError(at_tensor + "shape has a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (~0ull) / dim) throw ModelError(at_tensor + "shape overflows");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      throw ModelError(at_tensor + "data_offsets must be two non-negative integers");
    info.begin = jo[0].get<uint64_t>();
    info.end = jo[1].get<uint64_t>();
    if (info.begin > info.end)
      throw ModelError(at_tensor + "data_offsets begin " + std::to_string(info.begin) + " > end " +
                       std::to_string(info.end));
    if (info.end > f->data_size_)
      throw ModelError(at_tensor + "data_offsets end " + std::to_string(info.end) +
                       " is beyond the data section (" + std::to_string(f->data_size_) + " bytes); truncated file?");
    if (numel > (~0ull) / esize || numel * esize != info.end - info.begin)
      throw ModelError(at_tensor + "shape x dtype size = " + std::to_string(numel * esize) +
                       " bytes but data_offsets span " + std::to_string(info.end - info.begin) + " bytes");
    f->tensors_.push_back(std::move(info));
  }
  // Entries must not overlap: sort by offset and check each starts at or after the previous end.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : f->tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  const TensorInfo* reach = nullptr;  // the entry seen so far that ends furthest
  for (const TensorInfo* t : by_offset) {
    if (t->end == t->begin) continue;  // empty tensors occupy no bytes
    if (reach != nullptr && t->begin < reach->end)
      throw ModelError(where + "tensors '" + reach->name + "' and '" + t->name + "' overlap in the data section");
    if (reach == nullptr || t->end > reach->end) reach = t;
  }
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  return f;
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

const TensorInfo* SafeTensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

at::Tensor SafeTensorsFile::tensor(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) throw ModelError(path_.string() + ": no tensor named '" + name + "'");
  const at::ScalarType st = scalar_type(info->dtype);
  const int esize = dtype_size(info->dtype);
  auto* ptr = const_cast<uint8_t*>(data_ + info->begin);
  auto opts = at::TensorOptions().dtype(st).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(ptr) % esize != 0) {
    // Misaligned for its dtype: copy into an aligned buffer rather than hand out a bad view.
    at::Tensor out = at::empty(info->shape, opts);
    std::memcpy(out.data_ptr(), ptr, info->end - info->begin);
    return out;
  }
  std::shared_ptr<const SafeTensorsFile> keep = self_.lock();
  return at::from_blob(
      ptr, info->shape, [keep](void*) mutable { keep.reset(); }, opts);
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const uint64_t nbytes = c.numel() * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(c);
  }
  std::string hs = header.dump();
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');  // keep the data section 8-byte aligned
  AtomicFile out(path);
  uint64_t n = hs.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.stream().write(len, 8);
  out.stream().write(hs.data(), hs.size());
  for (const auto& c : data) out.stream().write(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  out.commit();
}

}  // namespace lens
