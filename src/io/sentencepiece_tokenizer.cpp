// Sentencepiece tokenizer behind a dlopen'ed shim (see spm_shim.cpp for why). The shim is found
// via $LENS_SPM_SHIM, next to the running executable, in ../lib beside it, or at its build path.
#include "io/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <mutex>

#include "lens/error.h"

namespace lens {

namespace fs = std::filesystem;

namespace {

struct ShimApi {
  void* (*load)(const char*, char*, int);
  void (*free)(void*);
  int (*encode)(void*, const char*, int, int*, int);
  int (*decode)(void*, const int*, int, char*, int);
  int (*piece)(void*, int, char*, int);
  int (*vocab_size)(void*);
  int (*bos_id)(void*);
  int (*eos_id)(void*);
  int (*is_byte)(void*, int);
  int (*is_control)(void*, int);
};

std::vector<fs::path> shim_candidates() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("LENS_SPM_SHIM")) out.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back(exe.parent_path() / "liblens_spm.so");
    out.push_back(exe.parent_path().parent_path() / "lib" / "liblens_spm.so");
  }
  out.emplace_back(LENS_SPM_SHIM_PATH);
  return out;
}

const ShimApi& shim() {
  static ShimApi api{};
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    void* lib = nullptr;
    std::string tried;
    for (const auto& p : shim_candidates()) {
      if (!fs::exists(p)) {
        tried += " " + p.string();
        continue;
      }
      lib = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (lib != nullptr) break;
      tried += " " + p.string() + " (" + dlerror() + ")";
    }
    if (lib == nullptr) {
      failure = "cannot load the sentencepiece shim liblens_spm.so; tried:" + tried;
      return;
    }
    auto sym = [&](const char* name) {
      void* s = dlsym(lib, name);
      if (s == nullptr) failure = std::string("liblens_spm.so lacks ") + name;
      return s;
    };
    api.load = reinterpret_cast<decltype(api.load)>(sym("lens_spm_load"));
    api.free = reinterpret_cast<decltype(api.free)>(sym("lens_spm_free"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("lens_spm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(sym("lens_spm_decode"));
    api.piece = reinterpret_cast<decltype(api.piece)>(sym("lens_spm_piece"));
    api.vocab_size = reinterpret_cast<decltype(api.vocab_size)>(sym("lens_spm_vocab_size"));
    api.bos_id = reinterpret_cast<decltype(api.bos_id)>(sym("lens_spm_bos_id"));
    api.eos_id = reinterpret_cast<decltype(api.eos_id)>(sym("lens_spm_eos_id"));
    api.is_byte = reinterpret_cast<decltype(api.is_byte)>(sym("lens_spm_is_byte"));
    api.is_control = reinterpret_cast<decltype(api.is_control)>(sym("lens_spm_is_control"));
  });
  if (!failure.empty()) throw ModelError(failure);
  return api;
}

class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(void* h, bool add_bos, bool add_eos) : h_(h), add_bos_(add_bos), add_eos_(add_eos) {}
  ~SentencePieceTokenizer() override { shim().free(h_); }

  std::vector<int64_t> encode(const std::string& text, bool add_special) const override {
    std::vector<int> buf(text.size() + 16);
    int n = shim().encode(h_, text.data(), static_cast<int>(text.size()), buf.data(), static_cast<int>(buf.size()));
    if (n > static_cast<int>(buf.size())) {
      buf.resize(n);
      n = shim().encode(h_, text.data(), static_cast<int>(text.size()), buf.data(), n);
    }
    if (n < 0) throw InputError("sentencepiece could not encode the text");
    std::vector<int64_t> ids;
    if (add_special && add_bos_ && bos_id()) ids.push_back(*bos_id());
    ids.insert(ids.end(), buf.begin(), buf.begin() + n);
    if (add_special && add_eos_ && eos_id()) ids.push_back(*eos_id());
    return ids;
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::vector<int> v(ids.begin(), ids.end());
    int n = shim().decode(h_, v.data(), static_cast<int>(v.size()), nullptr, 0);
    if (n < 0) throw InputError("sentencepiece could not decode the ids");
    std::string out(n + 1, '\0');
    shim().decode(h_, v.data(), static_cast<int>(v.size()), out.data(), n + 1);
    out.resize(n);
    return out;
  }

  std::string piece(int64_t id) const override {
    int n = shim().piece(h_, static_cast<int>(id), nullptr, 0);
    std::string out(n + 1, '\0');
    shim().piece(h_, static_cast<int>(id), out.data(), n + 1);
    out.resize(n);
    return out;
  }

  std::string token_text(int64_t id) const override {
    if (id < 0 || id >= vocab_size()) return "[" + std::to_string(id) + "]";
    return sentencepiece_display(piece(id));
  }

  int64_t vocab_size() const override { return shim().vocab_size(h_); }
  std::optional<int64_t> bos_id() const override {
    int b = shim().bos_id(h_);
    return b >= 0 ? std::optional<int64_t>(b) : std::nullopt;
  }
  std::optional<int64_t> eos_id() const override {
    int e = shim().eos_id(h_);
    return e >= 0 ? std::optional<int64_t>(e) : std::nullopt;
  }
  std::string kind() const override { return "sentencepiece"; }

 private:
  void* h_;
  bool add_bos_;
  bool add_eos_;
};

}  // namespace

std::string sentencepiece_display(const std::string& piece) {
  // "<0xNN>" byte pieces: show printable ASCII and whitespace as the character itself.
  if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>') {
    const int b = std::stoi(piece.substr(3, 2), nullptr, 16);
    if ((b >= 0x20 && b < 0x7f) || b == '\n' || b == '\t') return std::string(1, static_cast<char>(b));
    return piece;
  }
  std::string out;
  const std::string kSpace = "\xE2\x96\x81";  // U+2581
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

std::unique_ptr<Tokenizer> load_sentencepiece(const fs::path& model_file, bool add_bos, bool add_eos) {
  char err[512] = {0};
  void* h = shim().load(model_file.c_str(), err, sizeof(err));
  if (h == nullptr) throw ModelError(model_file.string() + ": cannot load sentencepiece model: " + err);
  return std::make_unique<SentencePieceTokenizer>(h, add_bos, add_eos);
}

}  // namespace lens
