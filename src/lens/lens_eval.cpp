// Held-out lens evaluation (see lens/lens_eval.h). Sums are kept in double across batches; each
// layer's (B*T, vocab) logits exist only while that layer is reduced.
#include "lens/lens_eval.h"

#include <c10/core/InferenceMode.h>

#include <fmt/format.h>
#include <map>

#include "lens/error.h"

namespace lens {

namespace {

struct Sums {
  double ce = 0, entropy = 0, kl = 0;
};

}  // namespace

EvalResult evaluate_lenses(Model& model, const std::vector<const Lens*>& lenses, const at::Tensor& sequences,
                           int64_t batch_size, double nats_to_bpb,
                           const std::function<void(int64_t, int64_t)>& progress) {
  c10::InferenceMode guard;
  TORCH_CHECK(sequences.dim() == 2 && sequences.size(1) >= 2, "evaluate_lenses: sequences must be (N, T>=2)");
  if (batch_size < 1) throw UsageError("--batch-size must be at least 1");
  const int64_t L = model.config().n_layer;
  const int64_t N = sequences.size(0), T = sequences.size(1);
  std::vector<std::vector<Sums>> sums(lenses.size(), std::vector<Sums>(static_cast<size_t>(L + 1)));
  double final_ce = 0, final_entropy = 0;

  for (int64_t start = 0; start < N; start += batch_size) {
    const int64_t end = std::min(N, start + batch_size);
    at::Tensor ids = sequences.slice(0, start, end).to(model.device());  // (B, T)
    std::map<int64_t, at::Tensor> resid;                                  // layer -> (B, T, d)
    Hooks hooks;
    for (int64_t l = 0; l <= L; ++l)
      hooks.on(lens_layer_hook(l), [&resid, l](const std::string&, const at::Tensor& x) { resid[l] = x; });
    at::Tensor final_logp = at::log_softmax(model.forward(ids, &hooks), -1).flatten(0, 1);  // (B*T, V)
    at::Tensor final_p = final_logp.exp();
    at::Tensor next = ids.slice(1, 1, T).reshape({-1, 1});  // (B*(T-1), 1)
    auto ce_of = [&](const at::Tensor& logp) {               // sum over predicted tokens
      const int64_t V = logp.size(-1);
      at::Tensor lp = logp.view({end - start, T, V}).slice(1, 0, T - 1).reshape({-1, V});
      return -lp.gather(1, next).sum().item<double>();
    };
    final_ce += ce_of(final_logp);
    final_entropy += -(final_p * final_logp).sum().item<double>();
    for (size_t k = 0; k < lenses.size(); ++k) {
      for (int64_t l = 0; l <= L; ++l) {
        at::Tensor logp = at::log_softmax(lenses[k]->logits(l, resid.at(l)), -1).flatten(0, 1);  // (B*T, V)
        Sums& s = sums[k][static_cast<size_t>(l)];
        s.ce += ce_of(logp);
        s.entropy += -(logp.exp() * logp).sum().item<double>();
        s.kl += (final_p * (final_logp - logp)).sum().item<double>();
      }
    }
    if (progress) progress(end, N);
  }

  EvalResult r;
  r.n_sequences = N;
  r.seq_len = T;
  r.n_positions = N * T;
  r.n_predictions = N * (T - 1);
  r.nats_to_bpb = nats_to_bpb;
  r.final_ce = final_ce / static_cast<double>(r.n_predictions);
  r.final_entropy = final_entropy / static_cast<double>(r.n_positions);
  for (size_t k = 0; k < lenses.size(); ++k) {
    LensEval le;
    le.lens = lenses[k]->name();
    for (int64_t l = 0; l <= L; ++l) {
      const Sums& s = sums[k][static_cast<size_t>(l)];
      le.layers.push_back({l, lens_layer_hook(l), s.ce / static_cast<double>(r.n_predictions),
                           s.entropy / static_cast<double>(r.n_positions),
                           std::max(0.0, s.kl / static_cast<double>(r.n_positions))});
    }
    r.lenses.push_back(std::move(le));
  }
  return r;
}

nlohmann::json eval_json(const EvalResult& r) {
  const double b = r.nats_to_bpb;
  nlohmann::json lenses = nlohmann::json::object();
  for (const LensEval& le : r.lenses) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerEval& x : le.layers)
      layers.push_back({{"layer", x.layer},
                        {"name", x.name},
                        {"ce", x.ce},
                        {"ce_bpb", x.ce * b},
                        {"entropy", x.entropy},
                        {"entropy_bpb", x.entropy * b},
                        {"kl", x.kl},
                        {"kl_bpb", x.kl * b}});
    lenses[le.lens] = layers;
  }
  return {{"schema_version", 1},
          {"kind", "lens-eval"},
          {"units", "nats per token; *_bpb: bits per byte of the evaluated text"},
          {"data", {{"sequences", r.n_sequences}, {"seq_len", r.seq_len}, {"positions", r.n_positions},
                    {"predictions", r.n_predictions}, {"nats_to_bpb", r.nats_to_bpb}}},
          {"baseline", {{"ce", r.final_ce}, {"ce_bpb", r.final_ce * b}, {"entropy", r.final_entropy},
                        {"entropy_bpb", r.final_entropy * b}}},
          {"lenses", lenses}};
}

std::string eval_table(const EvalResult& r) {
  std::string out = fmt::format("{} sequences x {} tokens; nats per token (bits per byte = nats x {:.4f})\n",
                                r.n_sequences, r.seq_len, r.nats_to_bpb);
  std::string head = fmt::format("{:>5}  {:<26}", "layer", "hook");
  for (const LensEval& le : r.lenses)
    head += fmt::format("  {:>9} {:>9} {:>9}", le.lens + " CE", "entropy", "KL");
  out += head + "\n";
  if (r.lenses.empty()) return out;
  for (size_t l = 0; l < r.lenses.front().layers.size(); ++l) {
    const LayerEval& first = r.lenses.front().layers[l];
    std::string row = fmt::format("{:>5}  {:<26}", first.layer, first.name);
    for (const LensEval& le : r.lenses) {
      const LayerEval& x = le.layers[l];
      row += fmt::format("  {:>9.4f} {:>9.4f} {:>9.4f}", x.ce, x.entropy, x.kl);
    }
    out += row + "\n";
  }
  out += fmt::format("model output: CE {:.4f} nats/token ({:.4f} bits/byte), entropy {:.4f}\n", r.final_ce,
                     r.final_ce * r.nats_to_bpb, r.final_entropy);
  return out;
}

}  // namespace lens
