// The tuned lens and its files (see lens/tuned_lens.h). params.pt is written by libtorch's pickler
// (the zip format torch.save writes since PyTorch 1.6, which Python's torch.load reads) and read by
// io/torch_pickle (libtorch's unpickler cannot read the OrderedDict a Python state_dict is).
#include "lens/tuned_lens.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/torch_pickle.h"
#include "lens/error.h"
#include "util/atomic_file.h"

namespace lens {

namespace fs = std::filesystem;

TunedLens::TunedLens(const Model& model, const std::string& base_model_name) : model_(model) {
  const ModelConfig& c = model.config();
  config_.base_model_name_or_path = base_model_name;
  config_.d_model = c.d_model;
  config_.num_hidden_layers = c.n_layer;
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(model.device());
  for (int64_t i = 0; i < c.n_layer; ++i)
    translators_.push_back({at::zeros({c.d_model, c.d_model}, opts), at::zeros({c.d_model}, opts)});
}

at::Tensor translate_affine(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias) {
  return h + at::linear(h, weight, bias);
}

at::Tensor TunedLens::translate(int64_t layer, const at::Tensor& resid) const {
  TORCH_CHECK(layer >= 0 && layer <= n_translators(), "tuned lens: layer ", layer, " outside 0..", n_translators());
  if (layer == n_translators()) return resid;  // the model's own last layer needs no translation
  const Translator& t = translators_[static_cast<size_t>(layer)];
  return translate_affine(resid, t.weight, t.bias);
}

at::Tensor TunedLens::logits_many(const std::vector<int64_t>& layers, const std::vector<at::Tensor>& resid,
                                  bool native) const {
  std::vector<at::Tensor> translated;
  for (size_t i = 0; i < layers.size(); ++i) translated.push_back(translate(layers[i], resid[i]));
  return model_.unembed(model_.final_norm(at::cat(translated, 0)), native);
}

at::Tensor TunedLens::logits(int64_t layer, const at::Tensor& resid) const {
  return model_.unembed(model_.final_norm(translate(layer, resid)));
}

std::vector<at::Tensor> TunedLens::parameters() const {
  std::vector<at::Tensor> out;
  for (const Translator& t : translators_) {
    out.push_back(t.weight);
    out.push_back(t.bias);
  }
  return out;
}

std::vector<std::string> TunedLens::parameter_names() const {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n_translators(); ++i) {
    out.push_back(std::to_string(i) + ".weight");
    out.push_back(std::to_string(i) + ".bias");
  }
  return out;
}

void save_tensor_dict(const fs::path& path, const std::vector<std::string>& names,
                      const std::vector<at::Tensor>& tensors) {
  TORCH_CHECK(names.size() == tensors.size(), "save_tensor_dict: ", names.size(), " names, ", tensors.size(),
              " tensors");
  c10::Dict<std::string, at::Tensor> dict;
  for (size_t i = 0; i < names.size(); ++i) dict.insert(names[i], tensors[i].detach().to(at::kCPU).contiguous().clone());
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  AtomicFile f(path);
  f.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.commit();
}

std::vector<std::pair<std::string, at::Tensor>> load_tensor_dict(const fs::path& path) {
  if (!fs::is_regular_file(path)) throw ModelError(path.string() + ": cannot open");
  return read_torch_tensor_dict(path);
}

namespace {

nlohmann::json config_json(const TunedLensConfig& c) {
  auto opt = [](const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); };
  return {{"base_model_name_or_path", c.base_model_name_or_path},
          {"d_model", c.d_model},
          {"num_hidden_layers", c.num_hidden_layers},
          {"bias", c.bias},
          {"base_model_revision", opt(c.base_model_revision)},
          {"unembed_hash", opt(c.unembed_hash)},
          {"lens_type", c.lens_type}};
}

TunedLensConfig parse_config(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw ModelError(path.string() + ": cannot open (is this a tuned lens directory?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(path.string() + ": not valid JSON: " + e.what());
  }
  TunedLensConfig c;
  try {
    c.base_model_name_or_path = j.value("base_model_name_or_path", "");
    c.d_model = j.at("d_model").get<int64_t>();
    c.num_hidden_layers = j.at("num_hidden_layers").get<int64_t>();
    c.bias = j.value("bias", true);
    if (j.contains("base_model_revision") && j["base_model_revision"].is_string())
      c.base_model_revision = j["base_model_revision"].get<std::string>();
    if (j.contains("unembed_hash") && j["unembed_hash"].is_string()) c.unembed_hash = j["unembed_hash"].get<std::string>();
    c.lens_type = j.value("lens_type", "linear_tuned_lens");
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(path.string() + ": not a tuned lens config (" + e.what() + ")");
  }
  return c;
}

}  // namespace

std::unique_ptr<TunedLens> TunedLens::load(const Model& model, const fs::path& dir) {
  if (!fs::is_directory(dir)) throw ModelError(dir.string() + ": not a directory (expected a tuned lens directory)");
  const fs::path cfg_path = dir / "config.json", params_path = dir / "params.pt";
  TunedLensConfig cfg = parse_config(cfg_path);
  const ModelConfig& mc = model.config();
  if (cfg.lens_type != "linear_tuned_lens")
    throw ModelError(cfg_path.string() + ": lens_type '" + cfg.lens_type + "' is not supported (only linear_tuned_lens)");
  if (!cfg.bias) throw ModelError(cfg_path.string() + ": translators without bias are not supported");
  if (cfg.d_model != mc.d_model || cfg.num_hidden_layers != mc.n_layer)
    throw ModelError(dir.string() + ": this lens is for a model with d_model " + std::to_string(cfg.d_model) + " and " +
                     std::to_string(cfg.num_hidden_layers) + " layers (" + cfg.base_model_name_or_path +
                     "), but the model has d_model " + std::to_string(mc.d_model) + " and " +
                     std::to_string(mc.n_layer) + " layers");
  if (!fs::exists(params_path)) throw ModelError(params_path.string() + ": missing");
  auto items = load_tensor_dict(params_path);

  std::unique_ptr<TunedLens> lens(new TunedLens(model, cfg.base_model_name_or_path));
  lens->config_ = cfg;
  const std::vector<std::string> names = lens->parameter_names();
  std::map<std::string, at::Tensor> by_name(items.begin(), items.end());
  for (const auto& kv : by_name)
    if (std::find(names.begin(), names.end(), kv.first) == names.end())
      throw ModelError(params_path.string() + ": unexpected tensor '" + kv.first + "' (expected 0.weight .. " +
                       names.back() + ")");
  for (int64_t i = 0; i < lens->n_translators(); ++i) {
    Translator& t = lens->translators_[static_cast<size_t>(i)];
    for (at::Tensor* dst : {&t.weight, &t.bias}) {
      const std::string key = std::to_string(i) + (dst == &t.weight ? ".weight" : ".bias");
      auto it = by_name.find(key);
      if (it == by_name.end()) throw ModelError(params_path.string() + ": missing tensor '" + key + "'");
      if (it->second.sizes() != dst->sizes())
        throw ModelError(params_path.string() + ": tensor '" + key + "' has shape " + c10::str(it->second.sizes()) +
                         ", expected " + c10::str(dst->sizes()));
      if (!it->second.is_floating_point())
        throw ModelError(params_path.string() + ": tensor '" + key + "' is not floating point");
      *dst = it->second.to(model.device(), at::kFloat).contiguous().clone();
    }
  }
  return lens;
}

void TunedLens::save(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw Error("cannot create directory " + dir.string() + ": " + ec.message());
  save_tensor_dict(dir / "params.pt", parameter_names(), parameters());
  write_file_atomic(dir / "config.json", config_json(config_).dump(2) + "\n");
}

}  // namespace lens
