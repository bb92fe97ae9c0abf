// The architecture table: each fixture's config.json maps to the expected ModelConfig, and bad or
// unsupported configs / checkpoints fail with one clear ModelError naming the problem.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <fstream>

#include "arch/arch.h"
#include "lens/error.h"
#include "lens/model.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

ModelConfig parse(const nlohmann::json& j) {
  const ArchSpec* a = find_arch(j);
  if (a == nullptr) throw std::runtime_error("no architecture for " + j.dump());
  return parse_model_config(*a, j);
}

nlohmann::json fixture_config(const std::string& name) {
  return test::read_json(test::fixtures_dir() / name / "config.json");
}

// Runs `f` and returns the ModelError message ("" when nothing was thrown).
template <typename F>
std::string model_error(F f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(ArchTable, FixtureConfigsMapToExpectedModelConfigs) {
  ModelConfig neox = parse(fixture_config("tiny-gpt-neox"));
  EXPECT_EQ(neox.architecture, "gpt_neox");
  EXPECT_TRUE(neox.parallel_attn);
  EXPECT_EQ(neox.d_head, 8);
  EXPECT_EQ(neox.rope.rotary_dim, 4);  // int(8 * 0.5)
  EXPECT_EQ(neox.rope.theta, 1000.0);
  EXPECT_EQ(neox.mlp, MlpKind::kGelu);
  ModelConfig neox_seq = parse(fixture_config("tiny-gpt-neox-seq"));
  EXPECT_FALSE(neox_seq.parallel_attn);
  EXPECT_EQ(neox_seq.rope.rotary_dim, 2);  // int(8 * 0.25)

  EXPECT_EQ(parse(fixture_config("tiny-mistral")).sliding_window, 4);
  ModelConfig qwen = parse(fixture_config("tiny-qwen2"));
  for (int64_t l = 0; l < qwen.n_layer; ++l)
    EXPECT_EQ(qwen.layer(l).window, 0) << "use_sliding_window false: the sliding_window number must be ignored";
  EXPECT_TRUE(qwen.tied_embeddings);

  ModelConfig llama3 = parse(fixture_config("tiny-llama3"));
  EXPECT_EQ(llama3.rope.type, "llama3");
  EXPECT_EQ(llama3.rope.original_max_position, 64);

  ModelConfig gemma = parse(fixture_config("tiny-gemma"));
  EXPECT_EQ(gemma.d_head, 12);
  EXPECT_TRUE(gemma.norm_plus_one);
  EXPECT_EQ(gemma.mlp, MlpKind::kGeGluTanh) << "hidden_activation null means gelu_pytorch_tanh";
  EXPECT_DOUBLE_EQ(gemma.embed_scale, std::sqrt(32.0));
  EXPECT_TRUE(gemma.tied_embeddings);
}

TEST(ArchTable, UnsupportedOrMissingConfigKeysAreModelErrors) {
  auto with = [](const std::string& fixture, const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = fixture_config(fixture);
    if (value.is_null() && key != "rope_scaling") {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return model_error([&] { parse(j); });
  };
  // Each refusal path names what it refuses (exit 4 through ModelError).
  EXPECT_NE(with("tiny-llama3", "rope_scaling", {{"rope_type", "mrope"}, {"factor", 4.0}}).find("'mrope' is not implemented"),
            std::string::npos);
  EXPECT_NE(with("tiny-llama3", "rope_scaling", {{"rope_type", "llama3"}, {"factor", 2.0}, {"low_freq_factor", 4.0},
                                                 {"high_freq_factor", 4.0}})
                .find("low_freq_factor < high_freq_factor"),
            std::string::npos);
  EXPECT_NE(with("tiny-llama", "rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}, {"beta_fast", 3}})
                .find("beta_fast is not read by rope_type 'linear'"),
            std::string::npos);
  EXPECT_NE(with("tiny-llama", "pretraining_tp", 2).find("'pretraining_tp' = 2 is not implemented"), std::string::npos);
  EXPECT_EQ(with("tiny-llama", "pretraining_tp", 1), "");
  EXPECT_NE(with("tiny-llama", "quantization_config", {{"quant_method", "gptq"}}).find("'quantization_config' is set (gptq)"),
            std::string::npos);
  EXPECT_NE(with("tiny-llama", "partial_rotary_factor", 0.5).find("partial_rotary_factor"), std::string::npos);
  EXPECT_NE(with("tiny-gemma", "use_bidirectional_attention", true).find("causal attention only"), std::string::npos);
  EXPECT_NE(with("tiny-qwen2", "rope_parameters", {{"full_attention", {{"rope_type", "default"}}}}).find("keyed by layer type"),
            std::string::npos);
  nlohmann::json qwen_types = fixture_config("tiny-qwen2");
  qwen_types["use_sliding_window"] = true;
  qwen_types["layer_types"] = {"full_attention", "chunked_attention", "full_attention"};
  EXPECT_NE(model_error([&] { parse(qwen_types); }).find("'chunked_attention', which lens does not implement"),
            std::string::npos);
  qwen_types["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_NE(model_error([&] { parse(qwen_types); }).find("'layer_types' has 2 entries for 3 layers"), std::string::npos);
  EXPECT_NE(with("tiny-qwen2", "num_hidden_layers", nullptr).find("'num_hidden_layers' is missing"), std::string::npos);
  EXPECT_NE(with("tiny-gpt-neox", "num_attention_heads", nullptr).find("'num_attention_heads' is missing"),
            std::string::npos);
  EXPECT_NE(with("tiny-gpt-neox", "rotary_pct", 0.1).find("rotary dims"), std::string::npos);  // int(8 * 0.1) = 0
  EXPECT_NE(with("tiny-gpt-neox", "hidden_act", "relu").find("'relu' is not supported"), std::string::npos);
  EXPECT_NE(with("tiny-gemma", "hidden_activation", "gelu").find("give different activations"), std::string::npos);
  EXPECT_NE(with("tiny-mistral", "hidden_act", 3).find("'hidden_act' must be a string"), std::string::npos);
  nlohmann::json qwen_window = fixture_config("tiny-qwen2");
  qwen_window["use_sliding_window"] = true;
  qwen_window["max_window_layers"] = 1;  // 4.x layout: layers from max_window_layers on slide
  ModelConfig slid = parse(qwen_window);
  EXPECT_EQ(slid.layer(0).window, 0);
  EXPECT_EQ(slid.layer(1).window, 4);
  EXPECT_EQ(slid.layer(2).window, 4);
  qwen_window["sliding_window"] = 0;
  EXPECT_NE(model_error([&] { parse(qwen_window); }).find("use_sliding_window is true"), std::string::npos);
}

TEST(ArchTable, UnknownKeysAreReportedNotSilentlyIgnored) {
  nlohmann::json j = fixture_config("tiny-llama");
  EXPECT_TRUE(parse(j).ignored_keys.empty()) << "every key of a transformers-written config is known";
  j["attn_logit_softcapping"] = 50.0;  // a Gemma 2 key LLaMA does not read
  j["my_new_knob"] = 1;
  const auto keys = parse(j).ignored_keys;
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], "attn_logit_softcapping");
  EXPECT_EQ(keys[1], "my_new_knob");
}

TEST(ArchTable, BothConfigLayoutsGiveOneRope) {
  // 4.x: rope_theta + rope_scaling; 5.x: rope_parameters. Where both appear, rope_scaling wins (as
  // convert_rope_params_to_dict does) and a theta inside the dict beats the top-level one.
  nlohmann::json v4 = fixture_config("tiny-llama");
  v4.erase("rope_parameters");
  v4["rope_theta"] = 500.0;
  v4["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  nlohmann::json v5 = fixture_config("tiny-llama");
  v5.erase("rope_theta");
  v5.erase("rope_scaling");
  v5["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 500.0}};
  for (const auto& j : {v4, v5}) {
    ModelConfig c = parse(j);
    EXPECT_EQ(c.rope.type, "linear");
    EXPECT_DOUBLE_EQ(c.rope.theta, 500.0);
    EXPECT_DOUBLE_EQ(*c.rope.factor, 2.0);
  }
  nlohmann::json both = v5;
  both["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 3.0}};
  both["rope_theta"] = 700.0;
  ModelConfig c = parse(both);
  EXPECT_EQ(c.rope.type, "dynamic");
  EXPECT_DOUBLE_EQ(c.rope.theta, 700.0) << "rope_scaling replaced the dict, so the top-level theta fills it";
  nlohmann::json theta_in_dict = v5;
  theta_in_dict["rope_theta"] = 900.0;
  EXPECT_DOUBLE_EQ(parse(theta_in_dict).rope.theta, 500.0);
  // yarn without original_max_position_embeddings takes max_position_embeddings; a top-level one wins.
  nlohmann::json yarn = v5;
  yarn["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 16}};
  EXPECT_EQ(parse(yarn).rope.original_max_position, 16);
  yarn["original_max_position_embeddings"] = 32;
  EXPECT_EQ(parse(yarn).rope.original_max_position, 32);
}

// Gemma 2: absent soft-caps take the config class's defaults (50 / 30), null ones mean none; layer
// types default to sliding on even layers; a sliding layer without a window is refused.
TEST(ArchTable, Gemma2ConfigRules) {
  const nlohmann::json base = test::read_json(test::fixtures_dir() / "v5" / "v5-gemma2" / "config.json");
  ModelConfig c = parse(base);
  EXPECT_EQ(c.norm_placement, NormPlacement::kSandwich);
  EXPECT_DOUBLE_EQ(c.attn_softcap, 2.0);
  EXPECT_DOUBLE_EQ(c.final_softcap, 1.5);
  EXPECT_DOUBLE_EQ(c.attn_scale, 1.0 / std::sqrt(24.0));
  nlohmann::json j = base;
  j.erase("attn_logit_softcapping");
  j.erase("final_logit_softcapping");
  j.erase("layer_types");
  c = parse(j);
  EXPECT_DOUBLE_EQ(c.attn_softcap, 50.0);
  EXPECT_DOUBLE_EQ(c.final_softcap, 30.0);
  EXPECT_EQ(c.layer(0).window, 4);
  EXPECT_EQ(c.layer(1).window, 0);
  j["attn_logit_softcapping"] = nullptr;
  j["final_logit_softcapping"] = nullptr;
  c = parse(j);
  EXPECT_EQ(c.attn_softcap, 0.0);
  EXPECT_EQ(c.final_softcap, 0.0);
  j["sliding_window"] = nullptr;
  EXPECT_NE(model_error([&] { parse(j); }).find("sliding_window is null"), std::string::npos);
  j = base;
  j["hidden_activation"] = "gelu";  // exact gelu in Gemma 2: not implemented as a GeGLU here
  EXPECT_NE(model_error([&] { parse(j); }).find("'gelu' is not supported"), std::string::npos);
  j = base;
  j["hidden_act"] = "silu";  // never read by Gemma 2's modeling code
  EXPECT_EQ(parse(j).mlp, MlpKind::kGeGluTanh);
}

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("lens_arch_test_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A checkpoint whose config says one family but whose tensors are another's must fail at load, naming the tensor.
TEST(ArchTable, CheckpointMissingFamilyTensorsIsModelError) {
  TempDir tmp;
  fs::copy_file(test::fixtures_dir() / "tiny-llama" / "model.safetensors", tmp.path() / "model.safetensors");
  auto load_as = [&](const std::string& arch) {
    nlohmann::json j = fixture_config("tiny-llama");
    j["architectures"] = {arch};
    if (arch == "GPTNeoXForCausalLM") j.erase("hidden_act");  // reach the weights (silu is not a NeoX activation)
    std::ofstream(tmp.path() / "config.json") << j.dump();
    return model_error([&] { Model::load(tmp.path(), {"float32", "cpu"}); });
  };
  const std::string qwen = load_as("Qwen2ForCausalLM");
  std::printf("Qwen2 config on LLaMA weights: %s\n", qwen.c_str());
  EXPECT_NE(qwen.find("self_attn.q_proj.bias"), std::string::npos);
  const std::string neox = load_as("GPTNeoXForCausalLM");
  std::printf("GPT-NeoX config on LLaMA weights: %s\n", neox.c_str());
  EXPECT_NE(neox.find("gpt_neox."), std::string::npos);
  EXPECT_EQ(load_as("MistralForCausalLM"), "");  // same layout, no biases: loads
}

}  // namespace
}  // namespace lens
