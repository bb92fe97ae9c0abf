// config.json as an architecture file reads it: typed getters that remember every key they were
// asked for, so that after parsing, the keys nobody read can be told apart from the keys that are
// known not to change the forward pass. That is how lens refuses what it does not implement
// instead of silently approximating it (README "Config keys").
// It also reads the two layouts of transformers 4.x and 5.x (rope_theta / rope_scaling vs
// rope_parameters, use_sliding_window / max_window_layers / sliding_window_pattern vs
// layer_types) into one form, with the precedence transformers 5.23 applies.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lens/config.h"

namespace lens {

class ConfigReader {
 public:
  explicit ConfigReader(const nlohmann::json& config);

  const nlohmann::json& json() const { return c_; }
  /// True when the key is present and not null (does not mark it read).
  bool has(const std::string& key) const;

  // Typed getters; each marks the key read. A present key of the wrong type is a ModelError
  // naming the key and the expected type; null counts as absent for the *_or getters.
  int64_t integer(const std::string& key);
  int64_t int_or(const std::string& key, int64_t fallback);
  double num_or(const std::string& key, double fallback);
  std::optional<double> opt_num(const std::string& key);
  std::string str_or(const std::string& key, const std::string& fallback);
  bool bool_or(const std::string& key, bool fallback);
  /// A token id: an integer, or absent / null / a list (then no single id).
  std::optional<int64_t> token_id(const std::string& key);
  /// The raw value (null when absent), marked read.
  const nlohmann::json& raw(const std::string& key);

  /// Keys this architecture knows and that do not change the forward pass (dropouts, cache flags...).
  void ignore(std::initializer_list<const char*> keys);
  /// Refuses (ModelError, exit 4) a key whose value would change the computation in a way lens does
  /// not implement, unless it is absent, null or equal to `neutral`. `why` completes the message.
  void refuse_unless(const std::string& key, const nlohmann::json& neutral, const std::string& why);

  /// Keys present in config.json that were neither read nor declared harmless, sorted.
  std::vector<std::string> unread_keys() const;

 private:
  const nlohmann::json& c_;
  std::set<std::string> read_;
};

/// What RoPE a config asks for, read the way transformers 5.23 standardises it
/// (RotaryEmbeddingConfigMixin.convert_rope_params_to_dict / standardize_rope_params):
/// - a non-null 4.x "rope_scaling" takes precedence over "rope_parameters";
/// - rope_theta inside the dict wins over a top-level "rope_theta", which wins over `default_theta`;
/// - a top-level partial_rotary_factor fills the dict's when it has none;
/// - for llama3 / yarn / longrope, original_max_position_embeddings comes from the top level when
///   the config has that key there (Phi-3 style), else from the dict, else max_position_embeddings.
/// `layer_type` selects one entry of a dict keyed by layer type (Gemma 3 style); "" reads a flat dict.
/// The returned config has type, theta, factors, and partial_rotary_factor (1 if absent); rotary_dim
/// and the pairing are left for the architecture to set. Unknown rope types are a ModelError.
struct RopeDefaults {
  double theta = 10000.0;                           // the config class's default_theta
  std::string theta_key = "rope_theta";             // top-level key holding theta in 4.x configs ("" = none)
  std::string partial_key = "partial_rotary_factor";  // top-level key holding the rotary fraction
  std::optional<double> partial;                    // the config class's default fraction, if it has one
  bool alpha = false;  // the family reads "alpha" (HunYuan: dynamic + alpha means a fixed NTK base)
};
RopeConfig read_rope(ConfigReader& r, const RopeDefaults& defaults, const std::string& layer_type = "");

/// The rope of one layer type ("full_attention" / "sliding_attention") for the config classes that
/// keep one per type (Gemma3TextConfig, Olmo3Config: convert_rope_params_to_dict): the entry of a
/// rope_parameters dict keyed by layer type; without one (4.x layout, or the entry missing),
/// full_attention reads a flat rope_scaling (which updates only that type) and the other types get
/// the default type; theta comes from the entry, else defaults.theta_key ("" = none), else
/// defaults.theta. A flat rope_parameters, or rope_scaling next to a keyed one, is a ModelError.
RopeConfig read_rope_for_layer_type(ConfigReader& r, const RopeDefaults& defaults, const std::string& layer_type);

/// The layer types of a config that declares them ("sliding_attention", "full_attention", ...), one
/// per layer, from "layer_types" if present (5.x), else empty.
std::vector<std::string> read_layer_types(ConfigReader& r, int64_t n_layer);

}  // namespace lens
