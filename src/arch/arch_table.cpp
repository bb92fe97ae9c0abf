// The list of supported architectures and config.json helpers shared by src/arch/*.cpp.
#include "arch/arch.h"

#include "lens/error.h"

namespace lens {

const std::vector<ArchSpec>& arch_table() {
  static const std::vector<ArchSpec> kTable = [] {
    std::vector<ArchSpec> t = {gpt2_arch(),      llama_arch(),   gpt_neox_arch(),      mistral_arch(),
                               qwen2_arch(),     gemma_arch(),   qwen3_arch(),         smollm3_arch(),
                               ministral_arch(), arcee_arch(),   apertus_arch(),       seed_oss_arch(),
                               hunyuan_dense_arch(), exaone4_arch(), ernie4_5_arch(), glm4_arch(),
                               granite_arch(), gemma2_arch(), gemma3_text_arch(), olmo2_arch(), olmo3_arch(),
                               olmo_arch(), phi3_arch(), starcoder2_arch(), phi_arch(), stablelm_arch(), cohere_arch(),
                               cohere2_arch(), gptj_arch(), gpt_neo_arch(), falcon_arch()};
    // The parity fixtures each family is tested against (tests/fixtures/tiny-* from transformers
    // 4.46.3, tests/fixtures/v5/* from 5.23.0).
    for (auto& a : t)
      a.parity_checked = (a.name == "gpt2" || a.name == "llama" || a.name == "gpt_neox" || a.name == "mistral" ||
                          a.name == "qwen2" || a.name == "gemma")
                             ? "4.46.3, 5.23.0"
                             : "5.23.0";
    return t;
  }();
  return kTable;
}

const ArchSpec* find_arch(const nlohmann::json& config) {
  if (!config.is_object()) return nullptr;
  if (config.contains("architectures") && config["architectures"].is_array()) {
    for (const auto& a : config["architectures"]) {
      if (!a.is_string()) continue;
      for (const auto& spec : arch_table())
        for (const auto& hf : spec.hf_architectures)
          if (hf == a.get<std::string>()) return &spec;
    }
    return nullptr;
  }
  if (config.contains("model_type") && config["model_type"].is_string()) {
    for (const auto& spec : arch_table())
      if (spec.name == config["model_type"].get<std::string>()) return &spec;
  }
  return nullptr;
}

ModelConfig parse_model_config(const ArchSpec& arch, const nlohmann::json& config) {
  ConfigReader reader(config);
  // A quantized checkpoint's weights are not the values the forward pass uses.
  if (reader.has("quantization_config"))
    throw ModelError("config.json: 'quantization_config' is set (" +
                     reader.raw("quantization_config").value("quant_method", std::string("unknown method")) +
                     "); lens reads unquantized safetensors only");
  reader.raw("architectures");
  reader.raw("model_type");
  ModelConfig cfg = arch.parse_config(reader);
  cfg.ignored_keys = reader.unread_keys();
  return cfg;
}

std::string supported_architectures() {
  std::string out;
  for (const auto& spec : arch_table())
    for (const auto& hf : spec.hf_architectures) out += (out.empty() ? "" : ", ") + hf;
  return out;
}

int64_t cfg_int(ConfigReader& c, const std::string& key) { return c.integer(key); }
int64_t cfg_int_or(ConfigReader& c, const std::string& key, int64_t fallback) { return c.int_or(key, fallback); }
double cfg_num_or(ConfigReader& c, const std::string& key, double fallback) { return c.num_or(key, fallback); }
std::string cfg_str_or(ConfigReader& c, const std::string& key, const std::string& fallback) {
  return c.str_or(key, fallback);
}
bool cfg_bool_or(ConfigReader& c, const std::string& key, bool fallback) { return c.bool_or(key, fallback); }
std::optional<int64_t> cfg_opt_int(ConfigReader& c, const std::string& key) { return c.token_id(key); }

void set_layer_windows(ModelConfig& cfg, const std::vector<std::string>& layer_types, int64_t window,
                       int64_t fallback_window) {
  cfg.layers.clear();
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    LayerSpec s;
    s.rotary = cfg.pos == PosKind::kRotary;
    if (layer_types.empty()) {
      s.window = fallback_window;
    } else {
      const std::string& t = layer_types[static_cast<size_t>(l)];
      if (t == "sliding_attention") {
        s.window = window;
      } else if (t != "full_attention") {
        throw ModelError("config.json: layer_types[" + std::to_string(l) + "] is '" + t +
                         "', which lens does not implement for " + cfg.hf_architecture);
      }
    }
    cfg.layers.push_back(s);
  }
}

void llama_like_common_keys(ConfigReader& c) {
  // transformers 5 no longer reads pretraining_tp, but a value > 1 marks a checkpoint whose 4.x
  // forward pass sliced its products; refuse rather than guess which one the user means.
  c.refuse_unless("pretraining_tp", 1, "tensor-parallel slicing of the projections");
  c.ignore({"attention_bias", "mlp_bias"});  // biases are read from the checkpoint's tensors
}

}  // namespace lens
