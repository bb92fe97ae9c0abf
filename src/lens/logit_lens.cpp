// The logit lens and the per-layer reduction shared by all lenses (see lens/lens.h).
// Statistics are computed in float32 on the lens logits of one layer at a time.
#include <c10/core/InferenceMode.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "lens/allocator.h"
#include "lens/error.h"
#include "lens/lens.h"
#include "lens/timing.h"
#include "row_reduce.h"

namespace lens {

std::string lens_layer_hook(int64_t layer) {
  return layer == 0 ? block_hook_name(0, "hook_resid_pre") : block_hook_name(layer - 1, "hook_resid_post");
}

at::Tensor LogitLens::logits(int64_t /*layer*/, const at::Tensor& resid) const {
  return model_.unembed(model_.final_norm(resid));
}

at::Tensor Lens::logits_many(const std::vector<int64_t>& layers, const std::vector<at::Tensor>& resid,
                             bool /*native*/) const {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < layers.size(); ++i) out.push_back(logits(layers[i], resid[i]));
  return at::cat(out, 0);
}

at::Tensor LogitLens::logits_many(const std::vector<int64_t>& /*layers*/, const std::vector<at::Tensor>& resid,
                                  bool native) const {
  // One (n*P, d) x (d, vocab) product reads the unembedding once instead of once per layer.
  return model_.unembed(model_.final_norm(at::cat(resid, 0)), native);
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

double final_check_tolerance(const at::Tensor& final_logits) {
  double eps = 0;  // relative spacing of the logits' dtype; 0 where float32 round-off is the measure
  if (final_logits.scalar_type() == at::kBFloat16) eps = std::numeric_limits<c10::BFloat16>::epsilon();
  if (final_logits.scalar_type() == at::kHalf) eps = std::numeric_limits<c10::Half>::epsilon();
  const double tolerance = 1e-4;
  if (eps == 0 || final_logits.numel() == 0) return tolerance;
  return tolerance + eps * final_logits.abs().max().item<double>();
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

// Fused reduction of one row of V logits z against the final layer's probs pf: m = max(z), then
// one vectorised pass for, with x = z - m, s = sum e^x, a = sum e^x x and b = sum pf x; the rank
// counts and a block-skipping top-k. With lse = m + log s:
//   entropy = log s - a / s
//   KL(final || layer) = sum pf log pf - sum pf log q = c - (b - log s * sum pf), c = sum pf log pf
// Every pass reads the row from cache (a GPT-2 row is 200 KB); see row_reduce.cpp for the loops.
PositionStats reduce_row(const float* z, const float* pf, int64_t V, int64_t k, int64_t final_top1,
                         double sum_p_logp, double sum_p, const std::vector<int64_t>& targets) {
  const float m = detail::row_max(z, V);
  const detail::RowSums sums = detail::row_sums(z, pf, V, m);
  std::vector<float> top_val(static_cast<size_t>(k));
  std::vector<int64_t> top_id(static_cast<size_t>(k));
  detail::row_top_k(z, V, k, top_val.data(), top_id.data());
  const double log_s = std::log(sums.s), lse = m + log_s;
  PositionStats out;
  out.entropy = log_s - sums.a / sums.s;
  out.kl_to_final = std::max(0.0, sum_p_logp - (sums.b - log_s * sum_p));  // tiny negative values are round-off
  for (int64_t i = 0; i < k; ++i) out.top.push_back({top_id[i], std::exp(top_val[i] - lse), top_val[i]});
  for (size_t j = 0; j <= targets.size(); ++j) {
    const int64_t id = j == 0 ? final_top1 : targets[j - 1];
    const float zt = z[id];
    TokenRank r{id, detail::row_count_above(z, V, zt) + 1, std::exp(zt - lse)};
    if (j == 0) {
      out.final_top1 = r;
    } else {
      out.targets.push_back(r);
    }
  }
  return out;
}

bool fused_dtype(const at::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16);
}

// Runs row(i, z_i) for every row i of a contiguous CPU (P, V) float32 or bfloat16 tensor, rows split
// over the threads, z_i as float32: bfloat16 rows are widened one at a time into a per-thread buffer
// that stays in cache (a GPT-2 row is 200 KB), which the row loops then read several times.
template <typename F>
void for_each_row(const at::Tensor& z, const F& row) {
  const int64_t P = z.size(0), V = z.size(1);
  const bool bf16 = z.scalar_type() == at::kBFloat16;
  static_assert(sizeof(c10::BFloat16) == sizeof(detail::bf16_t));
  const auto* zb = bf16 ? reinterpret_cast<const detail::bf16_t*>(z.data_ptr<c10::BFloat16>()) : nullptr;
  const float* zf = bf16 ? nullptr : z.data_ptr<float>();
  at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(bf16 ? static_cast<size_t>(V) : 0);
    for (int64_t i = begin; i < end; ++i) {
      if (bf16) detail::row_widen(zb + i * V, V, buf.data());
      row(i, bf16 ? buf.data() : zf + i * V);
    }
  });
}

}  // namespace

FinalDist prepare_final(const at::Tensor& final_logits) {
  FinalDist d;
  const int64_t P = final_logits.size(0), V = final_logits.size(1);
  d.top1.resize(P);
  d.sum_p_logp.resize(P);
  d.sum_p.resize(P);
  if (!fused_dtype(final_logits)) {
    d.logprobs = at::log_softmax(final_logits, -1, at::kFloat);
    d.probs = d.logprobs.exp();
    d.top1 = to_vec(d.logprobs.argmax(-1));
    d.sum_p_logp = to_dvec((d.probs * d.logprobs).sum(-1, false, at::kDouble));
    d.sum_p = to_dvec(d.probs.sum(-1, false, at::kDouble));
    return d;
  }
  const at::Tensor z = final_logits.contiguous();
  d.probs = at::empty(z.sizes(), z.options().dtype(at::kFloat));
  float* pp = d.probs.data_ptr<float>();
  for_each_row(z, [&](int64_t i, const float* zi) {
    const detail::RowSoftmax r = detail::row_softmax(zi, V, pp + i * V);
    d.top1[i] = detail::row_find(zi, V, r.max);
    d.sum_p_logp[i] = r.sum_p_logp;
    d.sum_p[i] = r.sum_p;
  });
  return d;
}

LayerStats reduce_layer(int64_t layer, const at::Tensor& logits, const FinalDist& final,
                        const std::vector<int64_t>& positions, const LensOptions& opts) {
  if (!fused_dtype(logits) || !final.probs.device().is_cpu())
    return reduce_layer_tensor_ops(layer, logits.to(at::kFloat),
                                   final.logprobs.defined() ? final.logprobs : final.probs.log(), positions, opts);
  ScopedStage stage("lens_reduce");
  const at::Tensor z = logits.contiguous();
  const int64_t V = z.size(1);
  const int64_t k = std::min(opts.top_k, V);
  const float* pp = final.probs.data_ptr<float>();
  LayerStats out;
  out.layer = layer;
  out.name = lens_layer_hook(layer);
  out.positions.resize(z.size(0));
  for_each_row(z, [&](int64_t i, const float* zi) {
    out.positions[i] =
        reduce_row(zi, pp + i * V, V, k, final.top1[i], final.sum_p_logp[i], final.sum_p[i], opts.targets);
    out.positions[i].pos = positions[i];
  });
  return out;
}

LayerStats reduce_layer(int64_t layer, const at::Tensor& logits, const at::Tensor& final_logprobs,
                        const std::vector<int64_t>& positions, const LensOptions& opts) {
  return reduce_layer(layer, logits, prepare_final(final_logprobs), positions, opts);  // softmax(log p) = p
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

  // Capture only the chosen positions of the chosen layers' residual streams (P, d) each, plus the
  // last layer, which the run-time check needs. They go into one float32 tensor allocated before the
  // forward pass: a capture allocated between two layers' temporaries pins the heap above them, and
  // after TinyLlama's forward at 512 tokens 139 MiB of freed heap stayed resident that way.
  at::Tensor pos_t = at::tensor(positions, at::kLong).to(model.device());
  std::set<int64_t> wanted(layers.begin(), layers.end());
  wanted.insert(cfg.n_layer);
  const at::Tensor resid_all = at::empty({static_cast<int64_t>(wanted.size()), static_cast<int64_t>(positions.size()),
                                          cfg.d_model},
                                         at::TensorOptions().dtype(at::kFloat).device(model.device()));
  std::map<int64_t, at::Tensor> resid;  // lens layer -> (P, d) slice of resid_all
  Hooks local;
  Hooks& hooks = extra != nullptr ? *extra : local;
  for (int64_t l : wanted) {
    at::Tensor slot = resid_all[static_cast<int64_t>(resid.size())];
    resid[l] = slot;
    hooks.on(lens_layer_hook(l), [slot, pos_t](const std::string&, const at::Tensor& x) mutable {
      at::index_select_out(slot, x[0], 0, pos_t);  // (P, d)
    });
  }
  at::Tensor id_t = at::tensor(ids, at::kLong).unsqueeze(0);      // (1, T)
  // Logits stay in the unembedding's dtype (bfloat16 for a bfloat16 model: half the bytes of their
  // float32 copy, and reduce_layer reads them directly).
  at::Tensor final_logits;  // (P, V)
  {
    ScopedStage stage("forward");
    final_logits = model.forward(id_t, &hooks, pos_t, /*native_logits=*/true)[0];
  }
  release_free_memory();  // the forward's temporaries: the lens's blocks are of other sizes

  // Positions go through the lenses in blocks of at most opts.block_bytes of logits per layer, and the
  // layers of a block in chunks of at most kChunkBytes: memory beyond the model stays bounded for any
  // prompt length (the (P, V) final logits aside), while few positions still get every layer in one
  // product, which reads the unembedding once (it dominates with few positions).
  constexpr int64_t kChunkBytes = 64ll << 20;
  const int64_t P = static_cast<int64_t>(positions.size());
  const int64_t V = cfg.vocab_size;
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(P, opts.block_bytes / (V * 4)));
  const bool lens_last = std::find(layers.begin(), layers.end(), cfg.n_layer) != layers.end();

  const double tolerance = final_check_tolerance(final_logits);
  std::vector<LensResult> results(lenses.size());
  for (size_t k = 0; k < lenses.size(); ++k) {
    results[k].lens = lenses[k]->name();
    // The last layer's lens is the model's own computation; any difference beyond round-off means
    // a hook captured the wrong tensor.
    results[k].final_tolerance = tolerance;
    for (int64_t l : layers) {
      LayerStats ls;
      ls.layer = l;
      ls.name = lens_layer_hook(l);
      results[k].layers.push_back(std::move(ls));
    }
  }
  std::vector<std::vector<std::vector<at::Tensor>>> logprobs(  // per lens, per layer: (n, V) float16 blocks
      lenses.size(), std::vector<std::vector<at::Tensor>>(layers.size()));

  for (int64_t p0 = 0; p0 < P; p0 += block) {
    const int64_t n = std::min(block, P - p0);
    const std::vector<int64_t> block_pos(positions.begin() + p0, positions.begin() + p0 + n);
    const at::Tensor block_final = final_logits.narrow(0, p0, n);  // (n, V)
    FinalDist final;
    {
      ScopedStage stage("lens_prepare");
      final = prepare_final(block_final);
    }
    // One forward pass serves every lens; each reduces the same captured residuals.
    for (size_t k = 0; k < lenses.size(); ++k) {
      const Lens& lens = *lenses[k];
      LensResult& result = results[k];
      at::Tensor last;  // (n, V)
      {
        ScopedStage stage("lens_logits");
        last = lens.logits_many({cfg.n_layer}, {resid.at(cfg.n_layer).narrow(0, p0, n)}, /*native=*/true);
      }
      {
        ScopedStage stage("lens_check");
        result.final_max_abs_diff =
            std::max(result.final_max_abs_diff, (last - block_final).abs_().max().item<double>());
      }
      if (!lens_last) last = at::Tensor();
      const int64_t per_chunk = std::max<int64_t>(1, kChunkBytes / (n * V * 4));
      for (size_t start = 0; start < layers.size(); start += static_cast<size_t>(per_chunk)) {
        const size_t end = std::min(layers.size(), start + static_cast<size_t>(per_chunk));
        std::vector<int64_t> chunk;
        std::vector<at::Tensor> chunk_resid;
        for (size_t i = start; i < end; ++i) {
          if (layers[i] == cfg.n_layer) continue;  // already computed for the check
          chunk.push_back(layers[i]);
          chunk_resid.push_back(resid.at(layers[i]).narrow(0, p0, n));
        }
        at::Tensor logits;  // (chunk * n, V)
        if (!chunk.empty()) {
          ScopedStage stage("lens_logits");
          logits = lens.logits_many(chunk, chunk_resid, /*native=*/true);
        }
        for (size_t i = start, j = 0; i < end; ++i) {
          const int64_t l = layers[i];
          at::Tensor layer_logits = l == cfg.n_layer ? last : logits.narrow(0, static_cast<int64_t>(j++) * n, n);
          LayerStats stats = reduce_layer(l, layer_logits, final, block_pos, opts);
          auto& out = result.layers[i].positions;
          out.insert(out.end(), std::make_move_iterator(stats.positions.begin()),
                     std::make_move_iterator(stats.positions.end()));
          if (opts.keep_logprobs)
            logprobs[k][i].push_back(at::log_softmax(layer_logits, -1, at::kFloat).to(at::kCPU, at::kHalf));
        }
        release_free_memory();  // a chunk's temporaries (measured: -40 MiB peak for TinyLlama at 512 tokens)
      }
    }
  }
  for (size_t k = 0; k < lenses.size(); ++k) {
    results[k].final_ok = results[k].final_max_abs_diff <= results[k].final_tolerance;
    if (opts.keep_logprobs) {
      std::vector<at::Tensor> per_layer;
      for (auto& blocks : logprobs[k]) per_layer.push_back(at::cat(blocks, 0));  // (P, V)
      results[k].logprobs = at::stack(per_layer);                                 // (L, P, V)
    }
  }
  return results;
}

LensResult run_lens(Model& model, const Lens& lens, const std::vector<int64_t>& ids, const LensOptions& opts,
                    Hooks* extra) {
  return run_lenses(model, {&lens}, ids, opts, extra).front();
}

}  // namespace lens
