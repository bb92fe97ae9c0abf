// ConfigReader and the two config layouts; see config_reader.h.
#include "arch/config_reader.h"

#include <algorithm>

#include "lens/error.h"

namespace lens {

namespace {

// Keys of any config.json that never change a decoder's forward pass: bookkeeping, generation
// defaults, training-only settings (dropout is off in eval), task heads lens does not use.
const std::set<std::string>& metadata_keys() {
  static const std::set<std::string> kKeys = {
      "architectures", "model_type", "transformers_version", "dtype", "torch_dtype", "_name_or_path",
      "name_or_path", "use_cache", "initializer_range", "initializer_factor", "bos_token_id", "eos_token_id",
      "pad_token_id", "sep_token_id", "unk_token_id", "cls_token_id", "mask_token_id", "decoder_start_token_id",
      "output_attentions", "output_hidden_states", "return_dict", "use_return_dict", "torchscript",
      "is_encoder_decoder", "is_decoder", "add_cross_attention", "tie_encoder_decoder", "cross_attention_hidden_size",
      "id2label", "label2id", "num_labels", "problem_type", "finetuning_task", "prefix", "task_specific_params",
      "chunk_size_feed_forward", "pruned_heads", "tokenizer_class", "_commit_hash", "_attn_implementation",
      "_attn_implementation_autoset", "attn_implementation", "_experts_implementation", "experts_implementation",
      // generation defaults (transformers pops these from the config)
      "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty",
      "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
      "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
      "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
      "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "max_new_tokens",
      // training-time settings with no effect on an eval forward pass
      "attention_dropout", "hidden_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob", "dropout",
      "classifier_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout",
      "gradient_checkpointing", "use_bfloat16", "xla_device", "tp_plan", "pp_plan", "base_model_tp_plan",
      "base_model_pp_plan", "keys_to_ignore_at_inference", "router_aux_loss_coef", "output_router_logits"};
  return kKeys;
}

std::string type_name(const nlohmann::json& v) { return v.type_name(); }

[[noreturn]] void wrong_type(const std::string& key, const char* expected, const nlohmann::json& v) {
  throw ModelError("config.json: '" + key + "' must be " + expected + ", got " + type_name(v) + " " + v.dump());
}

}  // namespace

ConfigReader::ConfigReader(const nlohmann::json& config) : c_(config) {
  if (!c_.is_object()) throw ModelError("config.json: the top level must be an object, got " + type_name(c_));
}

bool ConfigReader::has(const std::string& key) const { return c_.contains(key) && !c_[key].is_null(); }

const nlohmann::json& ConfigReader::raw(const std::string& key) {
  static const nlohmann::json kNull;
  read_.insert(key);
  return c_.contains(key) ? c_[key] : kNull;
}

int64_t ConfigReader::integer(const std::string& key) {
  const auto& v = raw(key);
  if (v.is_null()) throw ModelError("config.json: '" + key + "' is missing");
  if (!v.is_number_integer()) wrong_type(key, "an integer", v);
  return v.get<int64_t>();
}

int64_t ConfigReader::int_or(const std::string& key, int64_t fallback) {
  return raw(key).is_null() ? fallback : integer(key);
}

std::optional<double> ConfigReader::opt_num(const std::string& key) {
  const auto& v = raw(key);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) wrong_type(key, "a number", v);
  return v.get<double>();
}

double ConfigReader::num_or(const std::string& key, double fallback) { return opt_num(key).value_or(fallback); }

std::string ConfigReader::str_or(const std::string& key, const std::string& fallback) {
  const auto& v = raw(key);
  if (v.is_null()) return fallback;
  if (!v.is_string()) wrong_type(key, "a string", v);
  return v.get<std::string>();
}

bool ConfigReader::bool_or(const std::string& key, bool fallback) {
  const auto& v = raw(key);
  if (v.is_null()) return fallback;
  if (!v.is_boolean()) wrong_type(key, "true or false", v);
  return v.get<bool>();
}

std::optional<int64_t> ConfigReader::token_id(const std::string& key) {
  const auto& v = raw(key);
  if (!v.is_number_integer()) return std::nullopt;  // null or a list: no single id
  return v.get<int64_t>();
}

void ConfigReader::ignore(std::initializer_list<const char*> keys) {
  for (const char* k : keys) read_.insert(k);
}

void ConfigReader::refuse_unless(const std::string& key, const nlohmann::json& neutral, const std::string& why) {
  const auto& v = raw(key);
  if (v.is_null() || v == neutral) return;
  // 1 and 1.0 are the same setting
  if (v.is_number() && neutral.is_number() && v.get<double>() == neutral.get<double>()) return;
  throw ModelError("config.json: '" + key + "' = " + v.dump() + " is not implemented by lens (" + why + ")");
}

std::vector<std::string> ConfigReader::unread_keys() const {
  std::vector<std::string> out;
  for (auto it = c_.begin(); it != c_.end(); ++it) {
    const std::string& k = it.key();
    if (read_.count(k) || metadata_keys().count(k)) continue;
    out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

double rope_num(const nlohmann::json& d, const std::string& key, const std::string& where) {
  const auto& v = d[key];
  if (!v.is_number()) throw ModelError("config.json: " + where + "." + key + " must be a number, got " + v.dump());
  return v.get<double>();
}

std::optional<double> rope_opt_num(const nlohmann::json& d, const std::string& key, const std::string& where) {
  if (!d.contains(key) || d[key].is_null()) return std::nullopt;
  return rope_num(d, key, where);
}

std::vector<double> rope_list(const nlohmann::json& d, const std::string& key, const std::string& where) {
  if (!d.contains(key) || !d[key].is_array())
    throw ModelError("config.json: " + where + "." + key + " must be a list of numbers");
  std::vector<double> out;
  for (const auto& v : d[key]) {
    if (!v.is_number()) throw ModelError("config.json: " + where + "." + key + " holds " + v.dump());
    out.push_back(v.get<double>());
  }
  return out;
}

}  // namespace

RopeConfig read_rope(ConfigReader& r, const RopeDefaults& defaults, const std::string& layer_type) {
  // 1. Which dict: a non-null 4.x rope_scaling replaces rope_parameters (convert_rope_params_to_dict:
  //    `self.rope_parameters = rope_scaling or self.rope_parameters`).
  const nlohmann::json& scaling = r.raw("rope_scaling");
  const nlohmann::json& params = r.raw("rope_parameters");
  std::string where = "rope_parameters";
  nlohmann::json d = nlohmann::json::object();
  if (!scaling.is_null() && !(scaling.is_object() && scaling.empty())) {
    if (!scaling.is_object()) throw ModelError("config.json: 'rope_scaling' must be an object, got " + scaling.dump());
    d = scaling;
    where = "rope_scaling";
  } else if (!params.is_null()) {
    if (!params.is_object()) throw ModelError("config.json: 'rope_parameters' must be an object, got " + params.dump());
    d = params;
  }
  // 2. Nested by layer type (Gemma 3 writes {"full_attention": {...}, "sliding_attention": {...}}).
  bool nested = false;
  if (!layer_type.empty() && d.contains(layer_type)) {
    if (!d[layer_type].is_object())
      throw ModelError("config.json: " + where + "." + layer_type + " must be an object, got " + d[layer_type].dump());
    where += "." + layer_type;
    d = d[layer_type];
    nested = true;
  } else {
    for (const char* lt : {"full_attention", "sliding_attention", "chunked_attention", "linear_attention"})
      if (d.contains(lt))
        throw ModelError("config.json: " + where + " is keyed by layer type ('" + lt +
                         "'), which this architecture does not read");
  }
  RopeConfig rope;
  for (const char* k : {"rope_type", "type"})
    if (d.contains(k) && !d[k].is_null() && !d[k].is_string())
      throw ModelError("config.json: " + where + "." + k + " must be a string, got " + d[k].dump());
  rope.type = d.contains("rope_type") && !d["rope_type"].is_null() ? d["rope_type"].get<std::string>()
              : d.contains("type") && !d["type"].is_null()        ? d["type"].get<std::string>()
                                                                  : "default";
  // 3. theta: the dict's, else the top-level rope_theta, else the family's default.
  const std::optional<double> top_theta =
      defaults.theta_key.empty() ? std::nullopt : r.opt_num(defaults.theta_key);
  rope.theta = d.contains("rope_theta") && !d["rope_theta"].is_null() ? rope_num(d, "rope_theta", where)
                                                                       : top_theta.value_or(defaults.theta);
  // partial_rotary_factor: the dict's, else the top-level one, else the config class's default.
  const std::optional<double> top_partial = r.opt_num(defaults.partial_key);
  if (d.contains("partial_rotary_factor") && !d["partial_rotary_factor"].is_null())
    rope.partial_rotary_factor = rope_num(d, "partial_rotary_factor", where);
  else
    rope.partial_rotary_factor = top_partial.value_or(defaults.partial.value_or(1.0));
  if (!(rope.partial_rotary_factor > 0 && rope.partial_rotary_factor <= 1))
    throw ModelError("config.json: partial_rotary_factor " + std::to_string(rope.partial_rotary_factor) +
                     " must be in (0, 1]");
  rope.max_position = r.int_or("max_position_embeddings", 0);

  static const std::set<std::string> kKnownTypes = {"default", "linear", "dynamic", "yarn", "longrope", "llama3"};
  if (!kKnownTypes.count(rope.type))
    throw ModelError("config.json: " + where + " rope_type '" + rope.type +
                     "' is not implemented by lens (implemented: default, linear, dynamic, yarn, longrope, llama3)");
  // Keys each type reads; anything else in the dict is refused rather than ignored.
  std::set<std::string> allowed = {"rope_type", "type", "rope_theta", "partial_rotary_factor"};
  auto allow = [&](std::initializer_list<const char*> ks) {
    for (const char* k : ks) allowed.insert(k);
  };
  if (rope.type == "dynamic" && defaults.alpha && d.contains("alpha") && !d["alpha"].is_null() &&
      !(d["alpha"].is_number() && d["alpha"].get<double>() == 0)) {
    allow({"alpha", "factor"});
    rope.type = "ntk_alpha";
    rope.alpha = rope_num(d, "alpha", where);
  } else if (rope.type == "linear" || rope.type == "dynamic") {
    allow({"factor"});
    rope.factor = rope_num(d, "factor", where);
  } else if (rope.type == "llama3") {
    allow({"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"});
    rope.factor = rope_num(d, "factor", where);
    rope.low_freq_factor = rope_num(d, "low_freq_factor", where);
    rope.high_freq_factor = rope_num(d, "high_freq_factor", where);
  } else if (rope.type == "yarn") {
    allow({"factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow", "mscale",
           "mscale_all_dim", "truncate"});
    rope.factor = rope_opt_num(d, "factor", where);
    rope.attention_factor = rope_opt_num(d, "attention_factor", where);
    rope.mscale = rope_opt_num(d, "mscale", where);
    rope.mscale_all_dim = rope_opt_num(d, "mscale_all_dim", where);
    // `beta_fast or 32`: a null or zero value falls back to the default, as in transformers.
    if (auto b = rope_opt_num(d, "beta_fast", where); b && *b != 0) rope.beta_fast = *b;
    if (auto b = rope_opt_num(d, "beta_slow", where); b && *b != 0) rope.beta_slow = *b;
    if (d.contains("truncate") && !d["truncate"].is_null()) {
      if (!d["truncate"].is_boolean()) throw ModelError("config.json: " + where + ".truncate must be true or false");
      rope.truncate = d["truncate"].get<bool>();
    }
  } else if (rope.type == "longrope") {
    allow({"factor", "original_max_position_embeddings", "attention_factor", "short_factor", "long_factor"});
    rope.factor = rope_opt_num(d, "factor", where);
    rope.attention_factor = rope_opt_num(d, "attention_factor", where);
    rope.short_factor = rope_list(d, "short_factor", where);
    rope.long_factor = rope_list(d, "long_factor", where);
  }
  for (auto it = d.begin(); it != d.end(); ++it)
    if (!allowed.count(it.key()) && !it.value().is_null())
      throw ModelError("config.json: " + where + "." + it.key() + " is not read by rope_type '" + rope.type +
                       "' in lens; refusing rather than ignoring it");
  if (rope.type == "llama3" || rope.type == "yarn" || rope.type == "longrope") {
    // standardize_rope_params: a top-level original_max_position_embeddings wins for a flat dict
    // (it is set on the config before the rotary embedding standardises again at model init).
    if (!nested && r.has("original_max_position_embeddings"))
      rope.original_max_position = r.integer("original_max_position_embeddings");
    else if (d.contains("original_max_position_embeddings") && !d["original_max_position_embeddings"].is_null())
      rope.original_max_position = static_cast<int64_t>(rope_num(d, "original_max_position_embeddings", where));
    else
      rope.original_max_position = rope.max_position;
    if (rope.original_max_position <= 0)
      throw ModelError("config.json: rope_type '" + rope.type + "' needs original_max_position_embeddings > 0");
  }
  if (rope.factor && *rope.factor <= 0) throw ModelError("config.json: " + where + ".factor must be positive");
  if (rope.type == "llama3" && !(rope.high_freq_factor > rope.low_freq_factor && rope.low_freq_factor > 0))
    throw ModelError("config.json: llama3 " + where + " needs 0 < low_freq_factor < high_freq_factor");
  if (rope.type == "dynamic" && rope.max_position <= 0)
    throw ModelError("config.json: dynamic RoPE needs max_position_embeddings");
  if (rope.theta <= 0) throw ModelError("config.json: rope_theta must be positive");
  return rope;
}

RopeConfig read_rope_for_layer_type(ConfigReader& r, const RopeDefaults& defaults, const std::string& layer_type) {
  const nlohmann::json& params = r.raw("rope_parameters");
  const bool keyed = params.is_object() && (params.contains("full_attention") || params.contains("sliding_attention"));
  if (params.is_object() && !params.empty() && !keyed)
    throw ModelError("config.json: rope_parameters must be keyed by layer type (full_attention, sliding_attention) "
                     "for this architecture, got " + params.dump());
  if (r.has("rope_scaling") && keyed)
    throw ModelError("config.json: both rope_scaling and a rope_parameters keyed by layer type; refusing to guess "
                     "which one the full-attention layers use");
  if (keyed && params.contains(layer_type)) return read_rope(r, defaults, layer_type);
  if (!keyed && layer_type == "full_attention") return read_rope(r, defaults);
  // No entry for this type: {"rope_type": "default"} with the top-level (or default) theta.
  r.raw("rope_scaling");
  RopeConfig rope;
  rope.theta = defaults.theta_key.empty() ? defaults.theta : r.num_or(defaults.theta_key, defaults.theta);
  rope.max_position = r.int_or("max_position_embeddings", 0);
  if (rope.theta <= 0) throw ModelError("config.json: rope_theta must be positive");
  return rope;
}

std::vector<std::string> read_layer_types(ConfigReader& r, int64_t n_layer) {
  const auto& v = r.raw("layer_types");
  if (v.is_null()) return {};
  if (!v.is_array()) throw ModelError("config.json: 'layer_types' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& t : v) {
    if (!t.is_string()) throw ModelError("config.json: 'layer_types' holds " + t.dump() + ", not a string");
    std::string s = t.get<std::string>();
    if (s == "attention") s = "full_attention";  // transformers' legacy remap
    out.push_back(s);
  }
  if (static_cast<int64_t>(out.size()) != n_layer)
    throw ModelError("config.json: 'layer_types' has " + std::to_string(out.size()) + " entries for " +
                     std::to_string(n_layer) + " layers");
  return out;
}

}  // namespace lens
