// Hook registry used by the model's forward; see lens/hooks.h.
#include "lens/hooks.h"

#include "lens/error.h"

namespace lens {

std::string block_hook_name(int64_t layer, const std::string& point) {
  return "blocks." + std::to_string(layer) + "." + point;
}

std::vector<std::string> all_hook_names(int64_t n_layer) {
  std::vector<std::string> out = {"hook_embed", "hook_pos_embed"};
  for (int64_t l = 0; l < n_layer; ++l)
    for (const auto& p : block_hook_points()) out.push_back(block_hook_name(l, p));
  out.push_back("ln_final.hook_normalized");
  return out;
}

void Hooks::emit(const std::string& name, const at::Tensor& x) {
  auto cb = callbacks_.find(name);
  if (cb != callbacks_.end())
    for (auto& f : cb->second) f(name, x);
  if (keep_.count(name) > 0) cache_[name] = x.detach();
}

at::Tensor Hooks::get(const std::string& name) const {
  auto it = cache_.find(name);
  if (it == cache_.end()) throw Error("hook point '" + name + "' was not captured");
  return it->second;
}

}  // namespace lens
