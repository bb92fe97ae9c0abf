// Batched lens runs (see lens/batch.h): one right-padded forward pass for several prompts, then
// per layer one reduce_layer call over the chosen rows of all prompts (split where options differ
// or a chunk grows large). Statistics per row are independent, so the split gives the same numbers.
#include "lens/batch.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <map>

#include "lens/error.h"

namespace lens {

namespace {

// Rows reduced together at most (a single prompt with more rows stays whole, as in run_lens):
// bounds the (rows, vocab) temporaries of reduce_layer.
constexpr int64_t kMaxRows = 1024;

// A run of consecutive prompts [first, last) whose rows are reduced in one reduce_layer call.
struct Segment {
  size_t first = 0, last = 0;
  int64_t row0 = 0, rows = 0;
};

}  // namespace

std::vector<LensResult> run_lens_batch(Model& model, const Lens& lens, const std::vector<std::vector<int64_t>>& ids,
                                       const std::vector<LensOptions>& opts) {
  c10::InferenceMode guard;
  const ModelConfig& cfg = model.config();
  const size_t B = ids.size();
  TORCH_CHECK(opts.size() == B, "run_lens_batch: ", B, " prompts but ", opts.size(), " option sets");
  if (B == 0) return {};
  const LensOptions& o0 = opts.front();
  for (const auto& o : opts)
    if (o.top_k != o0.top_k || o.layers != o0.layers || o.keep_logprobs != o0.keep_logprobs)
      throw UsageError("run_lens_batch: top_k, layers and keep_logprobs must be the same for every prompt");
  if (o0.top_k < 1) throw UsageError("--top-k must be at least 1");
  const std::vector<int64_t> layers = parse_index_spec(o0.layers, cfg.n_layer + 1, "--layers");

  // Each prompt's positions; rows are (prompt, position) pairs in prompt order.
  int64_t T_max = 0;
  std::vector<std::vector<int64_t>> positions(B);
  for (size_t b = 0; b < B; ++b) {
    const int64_t T = static_cast<int64_t>(ids[b].size());
    if (T == 0) throw InputError("empty prompt: no tokens to run");
    T_max = std::max(T_max, T);
    positions[b] = parse_index_spec(opts[b].positions, T, "--positions");
    for (int64_t t : opts[b].targets)
      if (t < 0 || t >= cfg.vocab_size)
        throw InputError("target token id " + std::to_string(t) + " is outside the vocabulary (" +
                         std::to_string(cfg.vocab_size) + ")");
  }
  // The model computes logits only at the union of all prompts' positions (U of them).
  std::vector<int64_t> uni;
  for (const auto& p : positions) uni.insert(uni.end(), p.begin(), p.end());
  std::sort(uni.begin(), uni.end());
  uni.erase(std::unique(uni.begin(), uni.end()), uni.end());
  const int64_t U = static_cast<int64_t>(uni.size());
  std::vector<int64_t> resid_rows, logit_rows, row_prompt;  // per row: index into (B*T_max), (B*U), prompt
  for (size_t b = 0; b < B; ++b)
    for (int64_t p : positions[b]) {
      resid_rows.push_back(static_cast<int64_t>(b) * T_max + p);
      logit_rows.push_back(static_cast<int64_t>(b) * U + (std::lower_bound(uni.begin(), uni.end(), p) - uni.begin()));
      row_prompt.push_back(static_cast<int64_t>(b));
    }
  const int64_t R = static_cast<int64_t>(resid_rows.size());

  // Right padding: padded positions come after every real one, so causal attention never lets
  // them reach a real position. The pad id (0) is any valid token; its results are never read.
  at::Tensor id_t = at::zeros({static_cast<int64_t>(B), T_max}, at::kLong);  // (B, T_max)
  for (size_t b = 0; b < B; ++b)
    id_t[static_cast<int64_t>(b)].narrow(0, 0, static_cast<int64_t>(ids[b].size())).copy_(at::tensor(ids[b], at::kLong));

  at::Tensor resid_idx = at::tensor(resid_rows, at::kLong).to(model.device());
  std::map<int64_t, at::Tensor> resid;  // lens layer -> (R, d)
  Hooks hooks;
  std::vector<int64_t> wanted = layers;
  wanted.push_back(cfg.n_layer);
  for (int64_t l : wanted) {
    hooks.on(lens_layer_hook(l), [&resid, l, resid_idx](const std::string&, const at::Tensor& x) {
      resid[l] = x.reshape({-1, x.size(-1)}).index_select(0, resid_idx);  // (R, d)
    });
  }
  at::Tensor uni_t = at::tensor(uni, at::kLong).to(model.device());
  at::Tensor final_logits = model.forward(id_t, &hooks, uni_t, /*native_logits=*/true);  // (B, U, V), as run_lenses
  final_logits = final_logits.reshape({-1, final_logits.size(-1)})
                     .index_select(0, at::tensor(logit_rows, at::kLong).to(model.device()));  // (R, V)

  std::vector<LensResult> results(B);
  at::Tensor last = lens.logits_many({cfg.n_layer}, {resid.at(cfg.n_layer)}, /*native=*/true);  // (R, V)
  // Per prompt: the largest |lens - model| over its rows (see run_lens for the tolerance).
  at::Tensor row_diff = (last - final_logits).abs().amax(-1).to(at::kCPU, at::kDouble).contiguous();  // (R)
  const double* rd = row_diff.data_ptr<double>();
  const double tolerance = final_check_tolerance(final_logits);
  for (size_t b = 0; b < B; ++b) {
    results[b].lens = lens.name();
    results[b].final_tolerance = tolerance;
  }
  for (int64_t r = 0; r < R; ++r) {
    auto& res = results[static_cast<size_t>(row_prompt[r])];
    res.final_max_abs_diff = std::max(res.final_max_abs_diff, rd[r]);
  }
  for (auto& res : results) res.final_ok = res.final_max_abs_diff <= res.final_tolerance;

  // Segments: consecutive prompts with the same targets, up to kMaxRows rows.
  std::vector<Segment> segments;
  {
    int64_t row = 0;
    for (size_t b = 0; b < B; ++b) {
      const int64_t n = static_cast<int64_t>(positions[b].size());
      if (segments.empty() || opts[b].targets != opts[segments.back().first].targets ||
          segments.back().rows + n > kMaxRows)
        segments.push_back({b, b, row, 0});
      segments.back().last = b + 1;
      segments.back().rows += n;
      row += n;
    }
  }

  std::vector<FinalDist> seg_final;  // per segment, shared by its layers
  for (const Segment& s : segments) seg_final.push_back(prepare_final(final_logits.narrow(0, s.row0, s.rows)));
  std::vector<std::vector<at::Tensor>> logprobs(B);  // per prompt, per layer: (P, V) float16
  for (int64_t l : layers) {
    for (size_t si = 0; si < segments.size(); ++si) {
      const Segment& s = segments[si];
      at::Tensor x = resid.at(l).narrow(0, s.row0, s.rows);                           // (n, d)
      at::Tensor logits =  // (n, V)
          l == cfg.n_layer ? last.narrow(0, s.row0, s.rows) : lens.logits_many({l}, {x}, /*native=*/true);
      std::vector<int64_t> seg_pos;
      for (size_t b = s.first; b < s.last; ++b) seg_pos.insert(seg_pos.end(), positions[b].begin(), positions[b].end());
      LayerStats stats = reduce_layer(l, logits, seg_final[si], seg_pos, opts[s.first]);
      at::Tensor lp;
      if (o0.keep_logprobs) lp = at::log_softmax(logits, -1, at::kFloat).to(at::kCPU, at::kHalf);  // (n, V)
      int64_t at_row = 0;
      for (size_t b = s.first; b < s.last; ++b) {
        const int64_t n = static_cast<int64_t>(positions[b].size());
        LayerStats mine;
        mine.layer = stats.layer;
        mine.name = stats.name;
        mine.positions.assign(stats.positions.begin() + at_row, stats.positions.begin() + at_row + n);
        results[b].layers.push_back(std::move(mine));
        if (o0.keep_logprobs) logprobs[b].push_back(lp.narrow(0, at_row, n));
        at_row += n;
      }
    }
  }
  if (o0.keep_logprobs)
    for (size_t b = 0; b < B; ++b) results[b].logprobs = at::stack(logprobs[b]);  // (L, P, V)
  return results;
}

namespace {

// Why a prompt that prompt_ids rejected was rejected, as a stable code for error records.
std::string classify(const Model& model, const Tokenizer* tok, const PromptInput& in) {
  if (in.text && in.text->empty()) return "empty_prompt";
  std::vector<int64_t> ids = in.text ? tok->encode(*in.text, in.add_special) : in.ids;
  if (ids.empty()) return "empty_prompt";
  for (int64_t id : ids)
    if (id < 0 || id >= model.config().vocab_size) return "out_of_vocabulary";
  if (static_cast<int64_t>(ids.size()) > model.config().n_ctx) return "too_long";
  return "invalid_input";
}

}  // namespace

std::vector<BatchOutcome> run_prompts(Model& model, const Tokenizer* tok, const std::string& model_name,
                                      const std::vector<const Lens*>& lenses, const std::vector<BatchPrompt>& prompts) {
  std::vector<BatchOutcome> out(prompts.size());
  std::vector<size_t> good;
  std::vector<std::vector<int64_t>> good_ids;
  std::vector<LensOptions> good_opts;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const BatchPrompt& p = prompts[i];
    std::vector<int64_t> ids;
    try {
      ids = prompt_ids(model, tok, p.in);  // ModelError (no tokenizer) propagates: no prompt could run
    } catch (const InputError& e) {
      out[i].error_code = classify(model, tok, p.in);
      out[i].error_message = e.what();
      continue;
    }
    try {
      parse_index_spec(p.opts.positions, static_cast<int64_t>(ids.size()), "--positions");
    } catch (const UsageError& e) {
      out[i].error_code = "bad_positions";
      out[i].error_message = e.what();
      continue;
    }
    const auto bad = std::find_if(p.opts.targets.begin(), p.opts.targets.end(),
                                  [&](int64_t t) { return t < 0 || t >= model.config().vocab_size; });
    if (bad != p.opts.targets.end()) {
      out[i].error_code = "bad_target";
      out[i].error_message = "target token id " + std::to_string(*bad) + " is outside the vocabulary (" +
                             std::to_string(model.config().vocab_size) + ")";
      continue;
    }
    good.push_back(i);
    good_ids.push_back(std::move(ids));
    good_opts.push_back(p.opts);
  }
  const TokenNamer namer = make_namer(tok);
  for (size_t g = 0; g < good.size(); ++g) {
    RunDocument doc;
    doc.model = model_info(model, model_name);
    const PromptInput& in = prompts[good[g]].in;
    if (in.text) doc.prompt = *in.text;
    for (int64_t id : good_ids[g]) doc.tokens.push_back({id, namer(id)});
    out[good[g]].doc = std::move(doc);
  }
  for (const Lens* lens : lenses) {
    std::vector<LensResult> res = run_lens_batch(model, *lens, good_ids, good_opts);
    for (size_t g = 0; g < good.size(); ++g) out[good[g]].doc->lenses.push_back(std::move(res[g]));
  }
  return out;
}

}  // namespace lens
