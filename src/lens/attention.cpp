// Attention capture, sink report and export (see lens/attention.h). Patterns are kept as float16
// (a 1,000-token, 32x32-head capture is 2 GB that way); statistics are computed in float32 first.
#include "lens/attention.h"

#include "lens/error.h"
#include "lens/lens.h"
#include "lens/safetensors.h"

namespace lens {

namespace fs = std::filesystem;

AttentionRecorder::AttentionRecorder(const ModelConfig& cfg, const AttentionOptions& opts, Hooks& hooks) : opts_(opts) {
  cap_.n_layer = cfg.n_layer;
  cap_.n_head = cfg.n_head;
  cap_.d_head = cfg.d_head;
  cap_.sink_threshold = opts.sink_threshold;
  cap_.layers = parse_index_spec(opts.layers, cfg.n_layer, "--attention-layers");
  cap_.heads = parse_index_spec(opts.heads, cfg.n_head, "--attention-heads");
  at::Tensor head_idx = at::tensor(cap_.heads, at::kLong);
  for (int64_t l : cap_.layers) {
    auto keep = [head_idx](std::map<int64_t, at::Tensor>& into, int64_t layer) {
      return [&into, layer, head_idx](const std::string&, const at::Tensor& x) {
        TORCH_CHECK(x.size(0) == 1, "attention capture needs batch size 1");
        into[layer] = x[0].index_select(0, head_idx.to(x.device())).to(at::kCPU);  // float32 until take()
      };
    };
    hooks.on(block_hook_name(l, "attn.hook_pattern"), keep(pat_, l));
    if (opts.qk) {
      hooks.on(block_hook_name(l, "attn.hook_q"), keep(q_, l));
      hooks.on(block_hook_name(l, "attn.hook_k"), keep(k_, l));
    }
  }
}

AttentionCapture AttentionRecorder::take() {
  AttentionCapture out = cap_;
  for (int64_t l : out.layers) {
    auto it = pat_.find(l);
    if (it == pat_.end()) throw Error("attention of block " + std::to_string(l) + " was not captured");
    out.seq_len = it->second.size(-1);
    auto sinks = attention_sinks(l, out.heads, it->second, out.sink_threshold);
    out.sinks.insert(out.sinks.end(), sinks.begin(), sinks.end());
    out.patterns.push_back(it->second.to(at::kHalf));
    if (opts_.qk) {
      out.queries.push_back(q_.at(l).to(at::kHalf));
      out.keys.push_back(k_.at(l).to(at::kHalf));
    }
  }
  pat_.clear();
  q_.clear();
  k_.clear();
  return out;
}

std::vector<HeadSink> attention_sinks(int64_t layer, const std::vector<int64_t>& heads, const at::Tensor& pattern,
                                      double threshold) {
  at::Tensor p = pattern.to(at::kFloat);  // (H, T, T)
  const int64_t T = p.size(-1);
  at::Tensor ent = -(p * at::log(p.clamp_min(1e-30))).sum(-1).mean(-1);  // (H)
  at::Tensor bos, prev;
  if (T > 1) {
    bos = p.select(2, 0).narrow(1, 1, T - 1).mean(-1);                           // (H)
    prev = p.diagonal(-1, 1, 2).mean(-1);                                       // (H): entries [q, q-1]
  } else {
    bos = at::ones({p.size(0)});
    prev = at::zeros({p.size(0)});
  }
  std::vector<HeadSink> out;
  for (size_t h = 0; h < heads.size(); ++h) {
    HeadSink s;
    s.layer = layer;
    s.head = heads[h];
    s.bos_mass = bos[h].item<double>();
    s.prev_mass = prev[h].item<double>();
    s.entropy = ent[h].item<double>();
    s.sink = s.bos_mass >= threshold;
    out.push_back(s);
  }
  return out;
}

namespace {

std::string tensor_name(int64_t layer, const char* what) { return block_hook_name(layer, std::string("attn.") + what); }

nlohmann::json nested(const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  if (c.dim() == 1) return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  nlohmann::json arr = nlohmann::json::array();
  for (int64_t i = 0; i < c.size(0); ++i) arr.push_back(nested(c[i]));
  return arr;
}

}  // namespace

nlohmann::json attention_json(const AttentionCapture& cap, const fs::path& sidecar) {
  nlohmann::json j{{"n_layer", cap.n_layer}, {"n_head", cap.n_head}, {"seq_len", cap.seq_len},
                   {"d_head", cap.d_head},   {"layers", cap.layers}, {"heads", cap.heads},
                   {"sink_threshold", cap.sink_threshold}, {"has_qk", !cap.queries.empty()}};
  j["sinks"] = nlohmann::json::array();
  for (const auto& s : cap.sinks)
    j["sinks"].push_back({{"layer", s.layer}, {"head", s.head}, {"bos_mass", s.bos_mass},
                          {"prev_mass", s.prev_mass}, {"entropy", s.entropy}, {"sink", s.sink}});
  if (!sidecar.empty()) {
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (size_t i = 0; i < cap.layers.size(); ++i) {
      tensors.emplace_back(tensor_name(cap.layers[i], "hook_pattern"), cap.patterns[i]);
      if (!cap.queries.empty()) {
        tensors.emplace_back(tensor_name(cap.layers[i], "hook_q"), cap.queries[i]);
        tensors.emplace_back(tensor_name(cap.layers[i], "hook_k"), cap.keys[i]);
      }
    }
    write_safetensors(sidecar, tensors, {{"format", "lens-attention"}, {"dims", "(heads, query, key)"}});
    j["sidecar"] = sidecar.filename().string();
    return j;
  }
  j["patterns"] = nlohmann::json::array();
  for (const auto& p : cap.patterns) j["patterns"].push_back(nested(p));
  if (!cap.queries.empty()) {
    j["queries"] = nlohmann::json::array();
    j["keys"] = nlohmann::json::array();
    for (size_t i = 0; i < cap.queries.size(); ++i) {
      j["queries"].push_back(nested(cap.queries[i]));
      j["keys"].push_back(nested(cap.keys[i]));
    }
  }
  return j;
}

AttentionCapture read_attention(const nlohmann::json& a, const fs::path& base_dir) {
  AttentionCapture cap;
  try {
    cap.n_layer = a.at("n_layer");
    cap.n_head = a.at("n_head");
    cap.seq_len = a.at("seq_len");
    cap.d_head = a.value("d_head", 0);
    cap.layers = a.at("layers").get<std::vector<int64_t>>();
    cap.heads = a.at("heads").get<std::vector<int64_t>>();
    cap.sink_threshold = a.value("sink_threshold", 0.5);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("attention section is incomplete: ") + e.what());
  }
  const int64_t H = static_cast<int64_t>(cap.heads.size()), T = cap.seq_len;
  if (a.contains("sidecar")) {
    const fs::path p = base_dir / a["sidecar"].get<std::string>();
    if (!fs::exists(p)) throw InputError("attention sidecar " + p.string() + " is missing (keep it next to the JSON)");
    auto f = SafeTensorsFile::open(p);
    for (int64_t l : cap.layers) {
      cap.patterns.push_back(f->tensor(tensor_name(l, "hook_pattern")));
      if (f->find(tensor_name(l, "hook_q")) != nullptr) {
        cap.queries.push_back(f->tensor(tensor_name(l, "hook_q")));
        cap.keys.push_back(f->tensor(tensor_name(l, "hook_k")));
      }
    }
  } else if (a.contains("patterns")) {
    for (const auto& layer : a["patterns"]) {
      std::vector<float> flat;
      for (const auto& head : layer)
        for (const auto& row : head)
          for (const auto& v : row) flat.push_back(v.get<float>());
      if (static_cast<int64_t>(flat.size()) != H * T * T) throw InputError("attention patterns have the wrong size");
      cap.patterns.push_back(at::tensor(flat).view({H, T, T}));
    }
    for (const char* key : {"queries", "keys"}) {
      if (!a.contains(key)) continue;
      for (const auto& layer : a[key]) {
        std::vector<float> flat;
        for (const auto& head : layer)
          for (const auto& row : head)
            for (const auto& v : row) flat.push_back(v.get<float>());
        (std::string(key) == "queries" ? cap.queries : cap.keys).push_back(at::tensor(flat).view({H, T, -1}));
      }
    }
  } else {
    throw InputError("attention section has neither inline patterns nor a sidecar");
  }
  if (cap.patterns.size() != cap.layers.size()) throw InputError("attention: patterns do not match the layer list");
  for (const auto& s : a.value("sinks", nlohmann::json::array()))
    cap.sinks.push_back({s.at("layer"), s.at("head"), s.at("bos_mass"), s.at("prev_mass"), s.at("entropy"), s.at("sink")});
  return cap;
}

}  // namespace lens
