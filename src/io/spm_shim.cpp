// A C interface over sentencepiece, built as its own shared library (liblens_spm.so) and loaded
// with dlopen(RTLD_LOCAL | RTLD_DEEPBIND): sentencepiece's bundled protobuf must not meet
// libtorch's (../shared/STACK.md). Only plain C types cross this boundary.
#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

#define LENS_SPM_API extern "C" __attribute__((visibility("default")))

namespace {

int copy_out(const std::string& s, char* out, int cap) {
  if (out != nullptr && cap > 0) {
    const size_t n = std::min(s.size(), static_cast<size_t>(cap - 1));
    std::memcpy(out, s.data(), n);
    out[n] = '\0';
  }
  return static_cast<int>(s.size());
}

}  // namespace

LENS_SPM_API void* lens_spm_load(const char* path, char* err, int errlen) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->Load(path);
  if (!status.ok()) {
    copy_out(status.ToString(), err, errlen);
    delete sp;
    return nullptr;
  }
  return sp;
}

LENS_SPM_API void lens_spm_free(void* h) { delete static_cast<sentencepiece::SentencePieceProcessor*>(h); }

/// Writes up to `cap` ids; returns how many there are (call again with a bigger buffer if more), -1 on error.
LENS_SPM_API int lens_spm_encode(void* h, const char* text, int len, int* out, int cap) {
  std::vector<int> ids;
  if (!static_cast<sentencepiece::SentencePieceProcessor*>(h)->Encode(std::string(text, len), &ids).ok()) return -1;
  for (int i = 0; i < static_cast<int>(ids.size()) && i < cap; ++i) out[i] = ids[i];
  return static_cast<int>(ids.size());
}

/// Returns the length of the decoded text (bytes), writing at most cap-1 bytes plus a NUL.
LENS_SPM_API int lens_spm_decode(void* h, const int* ids, int n, char* out, int cap) {
  std::string text;
  if (!static_cast<sentencepiece::SentencePieceProcessor*>(h)->Decode(std::vector<int>(ids, ids + n), &text).ok())
    return -1;
  return copy_out(text, out, cap);
}

LENS_SPM_API int lens_spm_piece(void* h, int id, char* out, int cap) {
  return copy_out(static_cast<sentencepiece::SentencePieceProcessor*>(h)->IdToPiece(id), out, cap);
}

LENS_SPM_API int lens_spm_vocab_size(void* h) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize();
}
LENS_SPM_API int lens_spm_bos_id(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->bos_id(); }
LENS_SPM_API int lens_spm_eos_id(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->eos_id(); }
LENS_SPM_API int lens_spm_is_byte(void* h, int id) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->IsByte(id) ? 1 : 0;
}
LENS_SPM_API int lens_spm_is_control(void* h, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  return (sp->IsControl(id) || sp->IsUnknown(id)) ? 1 : 0;
}
