// Builds the pages that tests/browser/view.test.mjs opens, from synthetic data, through the real writer
// (lens::write_view / lens::write_lens_svg). Usage: make_pages OUT_DIR [tiny|large|noattn ...]
//   tiny:   7 tokens, 4 layers x 4 heads, logit + tuned lenses, queries/keys, patterns inline.
//   large:  1000 tokens, 32 layers x 32 heads, queries/keys, patterns in large_files/attn_<l>.js.
//   noattn: the tiny run without attention (attention tabs disabled).
// Each page also gets its run JSON next to it (<name>.json) so the test can compare what it shows.
// Not a model: the numbers are made up but shaped like `lens run` output (docs/run-json.md).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "output/view.h"

using nlohmann::json;

namespace {

// A made-up vocabulary: id -> display text.
std::string vocab_text(int id) {
  static const char* kWords[] = {"<s>", " The", " cat", " sat", " on", " the", " mat", ".", " dog", " ran",
                                 " a", " big", " red", " ball", " and", " then", " it", " was", "\n", " happy"};
  constexpr int kNamed = sizeof(kWords) / sizeof(kWords[0]);
  if (id < kNamed) return kWords[id];
  static const char* kSyl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "dra"};
  std::string s = " ";
  for (int x = id; x > 0; x /= 10) s += kSyl[x % 10];
  return s;
}

// One lens's layers: top-k per (layer, pos); the last layer predicts the actual next token.
json make_layers(const std::vector<int>& ids, int n_layer, int vocab, int top_k, double sharpen,
                 std::mt19937& rng) {
  std::uniform_int_distribution<int> any(1, vocab - 1);
  const int T = static_cast<int>(ids.size());
  json layers = json::array();
  // Final top-1 per position, needed for final_top1 at every layer.
  std::vector<int> final_top(T);
  for (int p = 0; p < T; ++p) final_top[p] = p + 1 < T ? ids[p + 1] : any(rng);
  for (int l = 0; l <= n_layer; ++l) {
    const double depth = static_cast<double>(l) / n_layer;  // 0 at the embedding, 1 at the output
    json positions = json::array();
    for (int p = 0; p < T; ++p) {
      const double p1 = std::min(0.97, (0.05 + 0.85 * depth) * sharpen);
      json top = json::array();
      double rest = 1.0 - p1, prob = p1;
      int first = (l == n_layer || (l * 7 + p) % 3 == 0) ? final_top[p] : any(rng);
      for (int r = 0; r < top_k; ++r) {
        const int id = r == 0 ? first : any(rng);
        top.push_back({{"id", id}, {"token", vocab_text(id)}, {"prob", prob}, {"logit", 10.0 * prob - r}});
        prob = rest * 0.5;
        rest -= prob;
      }
      const bool final_is_top = first == final_top[p];
      const double entropy = (1.0 - depth) * std::log(static_cast<double>(vocab)) * 0.9 + 0.2;
      positions.push_back({{"pos", p},
                           {"entropy", entropy},
                           {"kl_to_final", l == n_layer ? 0.0 : (1.0 - depth) * 4.0},
                           {"top", top},
                           {"final_top1",
                            {{"id", final_top[p]},
                             {"token", vocab_text(final_top[p])},
                             {"rank", final_is_top ? 1 : 2 + (p * 13 + l) % 50},
                             {"prob", final_is_top ? p1 : 0.01}}}});
    }
    const std::string name = l == 0 ? "blocks.0.hook_resid_pre"
                                    : "blocks." + std::to_string(l - 1) + ".hook_resid_post";
    layers.push_back({{"layer", l}, {"name", name}, {"positions", positions}});
  }
  return layers;
}

json make_run(const std::vector<int>& ids, int n_layer, int n_head, int vocab, bool both_lenses,
              std::mt19937& rng) {
  json tokens = json::array();
  std::string prompt;
  for (int id : ids) {
    tokens.push_back({{"id", id}, {"text", vocab_text(id)}});
    if (id != 0) prompt += vocab_text(id);
  }
  json run = {{"schema_version", 1},
              {"model",
               {{"name", "synthetic"}, {"path", "/dev/null"}, {"architecture", "llama"}, {"n_layer", n_layer},
                {"d_model", 64 * n_head}, {"n_head", n_head}, {"vocab_size", vocab}, {"dtype", "float32"}}},
              {"lens", "logit"},
              {"prompt", prompt},
              {"tokens", tokens},
              {"final_check", {{"max_abs_diff", 0.0}, {"tolerance", 1e-4}, {"ok", true}}}};
  run["layers"] = make_layers(ids, n_layer, vocab, 5, 1.0, rng);
  if (both_lenses) run["lenses"] = {{"logit", run["layers"]}, {"tuned", make_layers(ids, n_layer, vocab, 5, 1.1, rng)}};
  return run;
}

// Sink statistics of one (T, T) pattern, as `lens run --attention` reports them.
json sink_row(int layer, int head, const std::vector<float>& p, int T) {
  double bos = 0, prev = 0, entropy = 0;
  for (int i = 0; i < T; ++i) {
    bos += p[static_cast<std::size_t>(i) * T];
    if (i > 0) prev += p[static_cast<std::size_t>(i) * T + i - 1];
    for (int j = 0; j <= i; ++j) {
      const float w = p[static_cast<std::size_t>(i) * T + j];
      if (w > 0) entropy -= w * std::log(w);
    }
  }
  bos /= T;
  prev /= std::max(1, T - 1);
  return {{"layer", layer}, {"head", head}, {"bos_mass", bos}, {"prev_mass", prev},
          {"entropy", entropy / T}, {"sink", bos > 0.5}};
}

// Tiny case: patterns are the causal softmax of q.k / sqrt(d), so the neuron view can be checked.
lens::ViewAttention tiny_attention(int T, int n_layer, int n_head, int d_head, std::mt19937& rng) {
  lens::ViewAttention a;
  a.n_layer = n_layer;
  a.n_head = n_head;
  a.seq_len = T;
  a.d_head = d_head;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int l = 0; l < n_layer; ++l) a.layers.push_back(l);
  for (int l = 0; l < n_layer; ++l) {
    for (int h = 0; h < n_head; ++h) {
      std::vector<float> q(T * d_head), k(T * d_head), p(T * T, 0.0f);  // (T, d), (T, d), (T, T)
      for (auto& x : q) x = normal(rng);
      for (auto& x : k) x = normal(rng);
      if (h == 0) {  // head 0 is a sink: a shared direction in every query and in the BOS key
        for (int i = 0; i < T; ++i)
          for (int x = 0; x < d_head; ++x) q[i * d_head + x] += 1.5f;
        for (int x = 0; x < d_head; ++x) k[x] += 1.5f;
      }
      for (int i = 0; i < T; ++i) {
        std::vector<double> s(i + 1);
        double max = -1e30, z = 0;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int x = 0; x < d_head; ++x) dot += q[i * d_head + x] * k[j * d_head + x];
          s[j] = dot / std::sqrt(static_cast<double>(d_head));
          max = std::max(max, s[j]);
        }
        for (int j = 0; j <= i; ++j) z += s[j] = std::exp(s[j] - max);
        for (int j = 0; j <= i; ++j) p[i * T + j] = static_cast<float>(s[j] / z);
      }
      a.patterns.push_back(std::move(p));
      a.queries.push_back(std::move(q));
      a.keys.push_back(std::move(k));
    }
  }
  return a;
}

// Large case: four cheap head types (BOS sink, previous token, sparse random, recency decay).
lens::ViewAttention large_attention(int T, int n_layer, int n_head, int d_head, std::mt19937& rng) {
  lens::ViewAttention a;
  a.n_layer = n_layer;
  a.n_head = n_head;
  a.seq_len = T;
  a.d_head = d_head;
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int l = 0; l < n_layer; ++l) a.layers.push_back(l);
  for (int l = 0; l < n_layer; ++l) {
    for (int h = 0; h < n_head; ++h) {
      std::vector<float> p(static_cast<std::size_t>(T) * T, 0.0f);  // (T, T)
      const int kind = (l + h) % 4;
      for (int i = 0; i < T; ++i) {
        float* row = &p[static_cast<std::size_t>(i) * T];
        if (kind == 0) {  // sink
          row[0] += 0.7f;
          row[i] += 0.3f;
        } else if (kind == 1) {  // previous token
          row[i > 0 ? i - 1 : 0] += 0.8f;
          row[i] += 0.2f;
        } else if (kind == 2) {  // a few random keys
          float z = 0;
          for (int r = 0; r < 4; ++r) {
            const int j = static_cast<int>(uni(rng) * (i + 1)) % (i + 1);
            const float w = uni(rng) + 0.05f;
            row[j] += w;
            z += w;
          }
          for (int j = 0; j <= i; ++j) row[j] /= z;
        } else {  // exp(-(i - j) / 20), dense
          double z = 0;
          for (int j = 0; j <= i; ++j) z += row[j] = std::exp(-(i - j) / 20.0f);
          for (int j = 0; j <= i; ++j) row[j] = static_cast<float>(row[j] / z);
        }
      }
      a.patterns.push_back(std::move(p));
      std::vector<float> q(static_cast<std::size_t>(T) * d_head), k(q.size());  // (T, d), (T, d)
      for (auto& x : q) x = normal(rng);
      for (auto& x : k) x = normal(rng);
      a.queries.push_back(std::move(q));
      a.keys.push_back(std::move(k));
    }
  }
  return a;
}

void add_sinks(json& run, const lens::ViewAttention& a) {
  json sinks = json::array();
  for (std::size_t li = 0; li < a.layers.size(); ++li)
    for (int h = 0; h < a.n_head; ++h) sinks.push_back(sink_row(a.layers[li], h, a.patterns[li * a.n_head + h], a.seq_len));
  run["attention"] = {{"n_layer", a.n_layer}, {"n_head", a.n_head}, {"layers", a.layers}, {"sinks", sinks}};
}

void save_json(const json& j, const std::string& path) {
  std::ofstream(path) << j.dump(1) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_pages OUT_DIR [tiny|large|noattn ...]\n");
    return 2;
  }
  const std::string out = argv[1];
  std::vector<std::string> cases(argv + 2, argv + argc);
  if (cases.empty()) cases = {"tiny", "noattn", "large"};
  try {
    for (const auto& c : cases) {
      std::mt19937 rng(1234);
      if (c == "tiny" || c == "noattn") {
        const std::vector<int> ids = {0, 1, 2, 3, 4, 5, 6};  // "<s> The cat sat on the mat"
        json run = make_run(ids, 4, 4, 20, c == "tiny", rng);
        if (c == "tiny") {
          lens::ViewAttention a = tiny_attention(static_cast<int>(ids.size()), 4, 4, 8, rng);
          add_sinks(run, a);
          lens::write_view(run, &a, out + "/tiny.html");
          lens::write_lens_svg(run, out + "/tiny.svg");
        } else {
          lens::write_view(run, nullptr, out + "/noattn.html");
        }
        save_json(run, out + "/" + c + ".json");
      } else if (c == "large") {
        std::vector<int> ids(1000);
        std::uniform_int_distribution<int> any(1, 4999);
        ids[0] = 0;
        for (std::size_t i = 1; i < ids.size(); ++i) ids[i] = any(rng);
        json run = make_run(ids, 32, 32, 5000, false, rng);
        lens::ViewAttention a = large_attention(1000, 32, 32, 64, rng);
        add_sinks(run, a);
        lens::write_view(run, &a, out + "/large.html");
        save_json(run, out + "/large.json");
      } else {
        std::fprintf(stderr, "unknown case %s\n", c.c_str());
        return 2;
      }
      std::fprintf(stderr, "wrote %s/%s.html\n", out.c_str(), c.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
