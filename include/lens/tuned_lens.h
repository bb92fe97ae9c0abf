// The tuned lens (Belrose et al. 2023, arXiv:2303.08112): one learned affine translator per lens
// layer, h' = h + W h + b, followed by the model's final norm and unembedding. The final lens layer
// has no translator (it is the model's own output). Files are those of the Python `tuned-lens`
// package: a directory with config.json and params.pt (torch.save of {"{i}.weight", "{i}.bias"}).
// Training lives in src/train (lens/train.h); this header only holds the lens and its files.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lens/lens.h"
#include "lens/model.h"

namespace lens {

/// config.json of a tuned lens, field for field as the tuned-lens package's TunedLensConfig.
struct TunedLensConfig {
  std::string base_model_name_or_path;
  int64_t d_model = 0;
  int64_t num_hidden_layers = 0;  // translators: one per block (lens layers 0..n_layer-1)
  bool bias = true;
  std::optional<std::string> base_model_revision;
  std::optional<std::string> unembed_hash;  // written as null: the package's hash is numpy-print based
  std::string lens_type = "linear_tuned_lens";
};

/// Translator parameters of one lens layer, named as in the package's nn.Linear.
struct Translator {
  at::Tensor weight;  // (d, d) float32: the translator adds h @ weight^T, i.e. W h for column vectors
  at::Tensor bias;    // (d) float32
};

/// h + h @ weight^T + bias: one translator applied to residuals (..., d). Differentiable.
at::Tensor translate_affine(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias);

class TunedLens : public Lens {
 public:
  /// Zero-initialised translators: an untrained tuned lens is exactly the logit lens.
  /// `base_model_name` goes into config.json (base_model_name_or_path).
  TunedLens(const Model& model, const std::string& base_model_name);

  /// Reads `dir`/config.json and `dir`/params.pt (as written by save() or by the Python package).
  /// Throws ModelError naming the file for a missing or unreadable file, a lens type other than
  /// linear_tuned_lens, or a d_model / layer count / tensor shape that does not match `model`.
  static std::unique_ptr<TunedLens> load(const Model& model, const std::filesystem::path& dir);

  /// Writes config.json and params.pt into `dir` (created if needed). Each file is written
  /// atomically; config.json last, so a directory with config.json holds a complete lens.
  void save(const std::filesystem::path& dir) const;

  /// h + h @ W^T + b for lens layer `layer` < n_layer; `resid` unchanged for the last layer.
  /// Differentiable in the translator parameters (used by training).
  at::Tensor translate(int64_t layer, const at::Tensor& resid) const;

  /// float32 logits (..., vocab): unembed(final_norm(translate(layer, resid))).
  at::Tensor logits(int64_t layer, const at::Tensor& resid) const override;
  /// Translates each layer, then one shared unembedding product (as LogitLens::logits_many).
  at::Tensor logits_many(const std::vector<int64_t>& layers, const std::vector<at::Tensor>& resid,
                         bool native) const override;
  std::string name() const override { return "tuned"; }

  const TunedLensConfig& config() const { return config_; }
  int64_t n_translators() const { return static_cast<int64_t>(translators_.size()); }
  Translator& translator(int64_t i) { return translators_.at(static_cast<size_t>(i)); }
  const Translator& translator(int64_t i) const { return translators_.at(static_cast<size_t>(i)); }
  /// Every parameter tensor in state-dict order: 0.weight, 0.bias, 1.weight, ...
  std::vector<at::Tensor> parameters() const;
  /// Parameter names in the same order ("0.weight", ...).
  std::vector<std::string> parameter_names() const;

  const Model& model() const { return model_; }

 private:
  const Model& model_;
  TunedLensConfig config_;
  std::vector<Translator> translators_;
};

/// Saves named tensors as a torch.save-compatible file (a dict str -> tensor, CPU float copies),
/// atomically. Python reads it with torch.load.
void save_tensor_dict(const std::filesystem::path& path, const std::vector<std::string>& names,
                      const std::vector<at::Tensor>& tensors);

/// Reads a file written by torch.save of a dict (or OrderedDict state_dict) of tensors, or by
/// save_tensor_dict. Keys in file order. Throws ModelError naming the file if it is not one.
std::vector<std::pair<std::string, at::Tensor>> load_tensor_dict(const std::filesystem::path& path);

}  // namespace lens
