// A loaded decoder-only transformer: config, weights (zero-copy views of the checkpoint where the
// dtype allows) and a forward pass that emits named hook points. Architecture-neutral: the
// architecture table (src/arch) decides how a checkpoint maps onto it.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <string>

#include "lens/config.h"
#include "lens/hooks.h"

namespace lens {

struct LoadOptions {
  std::string dtype = "auto";  // auto | float32 | bfloat16 | float16
  std::string device = "cpu";  // cpu | cuda | cuda:N
  bool strict = false;          // refuse config.json keys lens does not know (ModelConfig::ignored_keys)
};

class ModelImpl;

class Model {
 public:
  /// Loads config.json + safetensors from `dir`. Throws ModelError (naming the file) on any problem,
  /// including an unsupported architecture (the message lists the supported ones).
  static std::shared_ptr<Model> load(const std::filesystem::path& dir, const LoadOptions& opts = {});
  ~Model();

  const ModelConfig& config() const;
  const std::filesystem::path& dir() const;
  /// Weight dtype in use ("float32", "bfloat16", "float16").
  std::string dtype_name() const;
  at::ScalarType dtype() const;
  at::Device device() const;
  /// Bytes of tensor data in the checkpoint files.
  uint64_t checkpoint_bytes() const;

  /// Runs the model on ids (B, T) int64. Emits hook points into `hooks` (may be null).
  /// Returns logits (B, P, vocab) for the positions in `logit_positions` (1-D int64, P entries),
  /// or for all T positions when it is undefined; float32, or see unembed's `native`.
  at::Tensor forward(const at::Tensor& ids, Hooks* hooks = nullptr, const at::Tensor& logit_positions = {},
                     bool native_logits = false);

  /// Final norm: (..., d) float32 residual -> (..., d) float32.
  at::Tensor final_norm(const at::Tensor& resid) const;
  /// Unembedding: (..., d) float32 -> (..., vocab) logits in float32, or with `native` in the
  /// dtype the unembedding matmul writes (bfloat16 for a bfloat16 model: the same values as the
  /// float32 result, which is their widened copy, in half the bytes).
  at::Tensor unembed(const at::Tensor& normed, bool native = false) const;

 private:
  Model() = default;
  std::unique_ptr<ModelImpl> impl_;
};

}  // namespace lens
