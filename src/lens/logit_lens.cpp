// The logit lens and the per-layer reduction shared by all lenses (see lens/lens.h).
// Statistics are computed in float32 on the lens logits of one layer at a time.
#include <c10/core/InferenceMode.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "lens/error.h"
#include "lens/lens.h"

namespace lens {

std::string lens_layer_hook(int64_t layer) {
  return layer == 0 ? block_hook_name(0, "hook_resid_pre") : block_hook_name(layer - 1, "hook_resid_post");
}

at::Tensor LogitLens::logits(int64_t /*layer*/, const at::Tensor& resid) const {
  return model_.unembed(model_.final_norm(resid));
}

at::Tensor Lens::logits_many(const std::vector<int64_t>& layers, const std::vector<at::Tensor>& resid) const {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < layers.size(); ++i) out.push_back(logits(layers[i], resid[i]));
  return at::cat(out, 0);
}

at::Tensor LogitLens::logits_many(const std::vector<int64_t>& /*layers*/, const std::vector<at::Tensor>& resid) const {
  // One (n*P, d) x (d, vocab) product reads the unembedding once instead of once per layer.
  return model_.unembed(model_.final_norm(at::cat(resid, 0)));
}

std::vector<int64_t> parse_index_spec(const std::string& spec, int64_t count, const std::string& what) {
  std::vector<int64_t> out;
  if (spec == "all") {
    for (int64_t i = 0; i < count; ++i) out.push_back(i);
    return out;
  }
  if (spec == "last") return {count - 1};
  if (spec == "first") return {0};
  auto parse_one = [&](const std::string& text) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (text.empty() || used != text.size())
      throw UsageError(what + ": '" + text + "' is not an index (use all, first, last, N, A-B, -1)");
    const int64_t r = v < 0 ? count + v : v;
    if (r < 0 || r >= count)
      throw UsageError(what + ": " + std::to_string(v) + " is outside 0.." + std::to_string(count - 1));
    return r;
  };
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(start, comma - start);
    const size_t dash = item.find('-', 1);  // a leading '-' is a sign
    if (dash != std::string::npos && item[dash - 1] != '-') {
      const int64_t a = parse_one(item.substr(0, dash)), b = parse_one(item.substr(dash + 1));
      for (int64_t v = a; v <= b; ++v) out.push_back(v);
    } else {
      out.push_back(parse_one(item));
    }
    start = comma + 1;
  }
  return out;
}

namespace {

std::vector<int64_t> to_vec(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::vector<double> to_dvec(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

LayerStats reduce_layer_tensor_ops(int64_t layer, const at::Tensor& logits, const at::Tensor& final_logprobs,
                                   const std::vector<int64_t>& positions, const LensOptions& opts) {
  const int64_t P = logits.size(0);
  const int64_t V = logits.size(1);
  // Row-wise dot products go through bmm to avoid (P, V) temporaries: dot(a, b) per row.
  auto row_dot = [](const at::Tensor& a, const at::Tensor& b) {
    return at::bmm(a.unsqueeze(1), b.unsqueeze(2)).view({-1});  // (P)
  };
  at::Tensor logp = logits - at::logsumexp(logits, -1, /*keepdim=*/true);  // (P, V)
  at::Tensor p = logp.exp();                                                // (P, V)
  at::Tensor entropy = -row_dot(p, logp);                                   // (P)
  // KL(final || layer) = sum p_f log p_f - sum p_f log p_layer
  at::Tensor final_p = final_logprobs.exp();
  at::Tensor kl = row_dot(final_p, final_logprobs) - row_dot(final_p, logp);  // (P)
  const int64_t k = std::min(opts.top_k, V);
  auto top = logits.topk(k, -1);                                         // values, indices: (P, k)
  at::Tensor top_p = p.gather(1, std::get<1>(top));                      // (P, k)

  // Ranks of the final layer's top-1 token and of the targets: 1 + how many logits beat it.
  at::Tensor final_top1 = final_logprobs.argmax(-1, /*keepdim=*/true);   // (P, 1)
  at::Tensor tracked = final_top1;
  if (!opts.targets.empty()) {
    at::Tensor t = at::tensor(opts.targets, at::kLong).to(logits.device()).unsqueeze(0).expand({P, -1});
    tracked = at::cat({final_top1, t}, 1);                               // (P, 1 + n_targets)
  }
  at::Tensor tracked_logit = logits.gather(1, tracked);                  // (P, n)
  at::Tensor rank = (logits.unsqueeze(1) > tracked_logit.unsqueeze(2)).sum(-1) + 1;  // (P, n)
  at::Tensor tracked_p = p.gather(1, tracked);                           // (P, n)

  const auto v_ent = to_dvec(entropy), v_kl = to_dvec(kl);
  const auto v_top_id = to_vec(std::get<1>(top));
  const auto v_top_logit = to_dvec(std::get<0>(top)), v_top_p = to_dvec(top_p);
  const auto v_tracked = to_vec(tracked), v_rank = to_vec(rank);
  const auto v_tracked_p = to_dvec(tracked_p);
  const int64_t n = tracked.size(1);

  LayerStats out;
  out.layer = layer;
  out.name = lens_layer_hook(layer);
  for (int64_t i = 0; i < P; ++i) {
    PositionStats s;
    s.pos = positions[i];
    s.entropy = v_ent[i];
    s.kl_to_final = std::max(0.0, v_kl[i]);  // tiny negative values are float round-off
    for (int64_t j = 0; j < k; ++j)
      s.top.push_back({v_top_id[i * k + j], v_top_p[i * k + j], v_top_logit[i * k + j]});
    for (int64_t j = 0; j < n; ++j) {
      TokenRank r{v_tracked[i * n + j], v_rank[i * n + j], v_tracked_p[i * n + j]};
      if (j == 0) {
        s.final_top1 = r;
      } else {
        s.targets.push_back(r);
      }
    }
    out.positions.push_back(std::move(s));
  }
  return out;
}

namespace {

// Fused reduction of one row of V logits z against the final layer's log-probs f and probs pf:
// pass 1 finds max(z) (and the final top-1); pass 2 accumulates sum e^(z-m), sum e^(z-m) z,
// sum pf z, the top-k and the rank counts. Then, with lse = m + log(sum e^(z-m)):
//   entropy = lse - sum e^(z-m) z / sum e^(z-m)
//   KL(final || layer) = sum pf f - (sum pf z - lse sum pf)
// Measured on this machine (GPT-2 vocab, 128 positions, one thread): the tensor-op path spends
// ~430 ms per layer in exp/logsumexp/bmm/compare kernels against ~150 ms for the unembedding
// matmul; this loop replaces all of them with two reads of the row.
PositionStats reduce_row(const float* z, const float* f, const float* pf, int64_t V, int64_t k,
                         const std::vector<int64_t>& targets) {
  float m = -std::numeric_limits<float>::infinity();
  float fmax = -std::numeric_limits<float>::infinity();
  int64_t f_arg = 0;
  for (int64_t v = 0; v < V; ++v) {
    m = std::max(m, z[v]);
    if (f[v] > fmax) fmax = f[v], f_arg = v;
  }
  std::vector<int64_t> tracked = {f_arg};
  tracked.insert(tracked.end(), targets.begin(), targets.end());
  const size_t n = tracked.size();
  std::vector<float> thresh(n);
  std::vector<int64_t> beat(n, 0);
  for (size_t j = 0; j < n; ++j) thresh[j] = z[tracked[j]];
  std::vector<float> top_val(k, -std::numeric_limits<float>::infinity());
  std::vector<int64_t> top_id(k, 0);
  double s = 0, a = 0, b = 0, c = 0, spf = 0;
  for (int64_t v = 0; v < V; ++v) {
    const float zv = z[v];
    const float e = std::exp(zv - m);
    s += e;
    a += static_cast<double>(e) * zv;
    b += static_cast<double>(pf[v]) * zv;
    c += static_cast<double>(pf[v]) * f[v];
    spf += pf[v];
    for (size_t j = 0; j < n; ++j) beat[j] += zv > thresh[j];
    if (zv > top_val[k - 1]) {  // insert into the descending top-k
      int64_t i = k - 1;
      while (i > 0 && top_val[i - 1] < zv) {
        top_val[i] = top_val[i - 1];
        top_id[i] = top_id[i - 1];
        --i;
      }
      top_val[i] = zv;
      top_id[i] = v;
    }
  }
  const double lse = m + std::log(s);
  PositionStats out;
  out.entropy = lse - a / s;
  out.kl_to_final = std::max(0.0, c - (b - lse * spf));  // tiny negative values are float round-off
  for (int64_t i = 0; i < k; ++i) out.top.push_back({top_id[i], std::exp(top_val[i] - lse), top_val[i]});
  for (size_t j = 0; j < n; ++j) {
    TokenRank r{tracked[j], beat[j] + 1, std::exp(thresh[j] - lse)};
    if (j == 0) {
      out.final_top1 = r;
    } else {
      out.targets.push_back(r);
    }
  }
  return out;
}

}  // namespace

LayerStats reduce_layer(int64_t layer, const at::Tensor& logits, const at::Tensor& final_logprobs,
                        const std::vector<int64_t>& positions, const LensOptions& opts, const at::Tensor& final_probs) {
  if (!logits.device().is_cpu() || logits.scalar_type() != at::kFloat)
    return reduce_layer_tensor_ops(layer, logits, final_logprobs, positions, opts);
  const int64_t P = logits.size(0), V = logits.size(1);
  const int64_t k = std::min(opts.top_k, V);
  at::Tensor z = logits.contiguous();
  at::Tensor f = final_logprobs.to(at::kCPU, at::kFloat).contiguous();
  at::Tensor pf = final_probs.defined() ? final_probs.to(at::kCPU, at::kFloat).contiguous() : f.exp();
  LayerStats out;
  out.layer = layer;
  out.name = lens_layer_hook(layer);
  out.positions.resize(P);
  const float* zp = z.data_ptr<float>();
  const float* fp = f.data_ptr<float>();
  const float* pp = pf.data_ptr<float>();
  at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      out.positions[i] = reduce_row(zp + i * V, fp + i * V, pp + i * V, V, k, opts.targets);
      out.positions[i].pos = positions[i];
    }
  });
  return out;
}

std::vector<LensResult> run_lenses(Model& model, const std::vector<const Lens*>& lenses, const std::vector<int64_t>& ids,
                                   const LensOptions& opts, Hooks* extra) {
  c10::InferenceMode guard;
  const auto& cfg = model.config();
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0) throw InputError("empty prompt: no tokens to run");
  if (opts.top_k < 1) throw UsageError("--top-k must be at least 1");

  const std::vector<int64_t> positions = parse_index_spec(opts.positions, T, "--positions");
  const std::vector<int64_t> layers = parse_index_spec(opts.layers, cfg.n_layer + 1, "--layers");
  for (int64_t t : opts.targets)
    if (t < 0 || t >= cfg.vocab_size)
      throw InputError("target token id " + std::to_string(t) + " is outside the vocabulary (" +
                       std::to_string(cfg.vocab_size) + ")");

  // Capture only the chosen positions of the chosen layers' residual streams (P, d) each,
  // plus the last layer, which the run-time check needs.
  at::Tensor pos_t = at::tensor(positions, at::kLong).to(model.device());
  std::map<int64_t, at::Tensor> resid;
  Hooks local;
  Hooks& hooks = extra != nullptr ? *extra : local;
  std::vector<int64_t> wanted = layers;
  wanted.push_back(cfg.n_layer);
  for (int64_t l : wanted) {
    hooks.on(lens_layer_hook(l), [&resid, l, pos_t](const std::string&, const at::Tensor& x) {
      resid[l] = x[0].index_select(0, pos_t);  // (P, d)
    });
  }
  at::Tensor id_t = at::tensor(ids, at::kLong).unsqueeze(0);      // (1, T)
  at::Tensor final_logits = model.forward(id_t, &hooks, pos_t)[0];  // (P, V)
  at::Tensor final_logprobs = at::log_softmax(final_logits, -1);
  at::Tensor final_probs = final_logprobs.exp();

  // One forward pass serves every lens; each reduces the same captured residuals.
  std::vector<LensResult> results;
  for (const Lens* lens_ptr : lenses) {
    const Lens& lens = *lens_ptr;
    LensResult result;
    result.lens = lens.name();
    at::Tensor last = lens.logits(cfg.n_layer, resid.at(cfg.n_layer));
    result.final_max_abs_diff = (last - final_logits).abs_().max().item<double>();
    if (lens_ptr == lenses.back()) final_logits = at::Tensor();  // log-probs and probs carry the rest
    if (std::find(layers.begin(), layers.end(), cfg.n_layer) == layers.end()) last = at::Tensor();
    // The last layer's lens is the model's own computation; any difference beyond float32
    // round-off means a hook captured the wrong tensor.
    result.final_tolerance = 1e-4;
    result.final_ok = result.final_max_abs_diff <= result.final_tolerance;

    // Layers go through the lens in chunks of at most kChunkBytes of logits: few enough matmuls to
    // read the unembedding rarely (it dominates with few positions), never all layers at once.
    // 64 MiB keeps peak memory near the weights (1.1B model, 512 positions: +0.3 GiB) while still
    // batching every layer into one product when only a few positions are asked for.
    constexpr int64_t kChunkBytes = 64ll << 20;
    std::vector<at::Tensor> logprobs;
    const int64_t P = static_cast<int64_t>(positions.size());
    const int64_t per_chunk = std::max<int64_t>(1, kChunkBytes / (P * cfg.vocab_size * 4));
    for (size_t start = 0; start < layers.size(); start += per_chunk) {
      const size_t end = std::min(layers.size(), start + static_cast<size_t>(per_chunk));
      std::vector<int64_t> chunk;
      std::vector<at::Tensor> chunk_resid;
      for (size_t i = start; i < end; ++i) {
        if (layers[i] == cfg.n_layer) continue;  // already computed for the check
        chunk.push_back(layers[i]);
        chunk_resid.push_back(resid.at(layers[i]));
      }
      at::Tensor logits = chunk.empty() ? at::Tensor() : lens.logits_many(chunk, chunk_resid);  // (n*P, V)
      for (size_t i = start, j = 0; i < end; ++i) {
        const int64_t l = layers[i];
        at::Tensor layer_logits = l == cfg.n_layer ? last : logits.narrow(0, static_cast<int64_t>(j++) * P, P);
        result.layers.push_back(reduce_layer(l, layer_logits, final_logprobs, positions, opts, final_probs));
        if (opts.keep_logprobs) logprobs.push_back(at::log_softmax(layer_logits, -1).to(at::kCPU, at::kHalf));
      }
    }
    if (opts.keep_logprobs) result.logprobs = at::stack(logprobs);  // (L, P, V)
    results.push_back(std::move(result));
  }
  return results;
}

LensResult run_lens(Model& model, const Lens& lens, const std::vector<int64_t>& ids, const LensOptions& opts,
                    Hooks* extra) {
  return run_lenses(model, {&lens}, ids, opts, extra).front();
}

}  // namespace lens
