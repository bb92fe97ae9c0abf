// Named hook points, called explicitly from the model's forward (libtorch C++ modules have no
// forward hooks). Names follow TransformerLens: "hook_embed", "blocks.{l}.hook_resid_pre", ...
// Only the points a caller asked for are kept or passed to callbacks; the rest cost one lookup.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace lens {

/// Per-block hook point suffixes, in the order a block emits them.
inline const std::vector<std::string>& block_hook_points() {
  static const std::vector<std::string> kPoints = {
      "hook_resid_pre", "attn.hook_q",     "attn.hook_k",        "attn.hook_pattern", "hook_attn_out",
      "hook_resid_mid", "hook_mlp_out",    "hook_resid_post"};
  return kPoints;
}

/// "blocks.{layer}.{point}"
std::string block_hook_name(int64_t layer, const std::string& point);

/// Every hook name a model with `n_layer` blocks emits (global points and per-block points).
std::vector<std::string> all_hook_names(int64_t n_layer);

class Hooks {
 public:
  using Callback = std::function<void(const std::string& name, const at::Tensor& x)>;

  /// Keep a copy of the tensor emitted at `name` in cache().
  void keep(const std::string& name) { keep_.insert(name); }
  /// Call `cb` when `name` is emitted (before the tensor is kept).
  void on(const std::string& name, Callback cb) { callbacks_[name].push_back(std::move(cb)); }

  bool wants(const std::string& name) const { return keep_.count(name) > 0 || callbacks_.count(name) > 0; }
  bool wants_block(int64_t layer, const std::string& point) const {
    return !empty() && wants(block_hook_name(layer, point));
  }
  bool empty() const { return keep_.empty() && callbacks_.empty(); }

  /// Called by the model. Cheap when nothing asked for `name`.
  void emit(const std::string& name, const at::Tensor& x);
  void emit_block(int64_t layer, const std::string& point, const at::Tensor& x) {
    if (!empty()) emit(block_hook_name(layer, point), x);
  }

  const std::map<std::string, at::Tensor>& cache() const { return cache_; }
  at::Tensor get(const std::string& name) const;
  void clear_cache() { cache_.clear(); }

 private:
  std::set<std::string> keep_;
  std::map<std::string, std::vector<Callback>> callbacks_;
  std::map<std::string, at::Tensor> cache_;
};

}  // namespace lens
