// Tuned-lens training loop, optimizer and checkpoints (see lens/train.h). The optimizer is written
// out (a dozen lines) rather than taken from torch::optim so that its state is plain named tensors
// in the checkpoint and its arithmetic is exactly PyTorch's SGD(nesterov=True, weight_decay) after
// clip_grad_norm_, which is what the Python package runs.
#include "lens/train.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "lens/error.h"
#include "lens/row_reduce.h"
#include "lens/timing.h"
#include "lens/tuned_lens.h"
#include "util/atomic_file.h"

namespace lens {

namespace fs = std::filesystem;

// Bytes of lens logits (float32) that one training pass may hold; see the layer loop below.
constexpr int64_t kLogitsBudget = int64_t{256} << 20;

at::Tensor lens_loss(const at::Tensor& logits, const at::Tensor& target, LensLoss kind) {
  const int64_t V = logits.size(-1);
  if (kind == LensLoss::kKL) {
    at::Tensor logq = at::log_softmax(logits, -1);                       // (B, T, V)
    return (target.exp() * (target - logq)).sum(-1).mean();             // KL(final || lens), mean over tokens
  }
  const int64_t T = logits.size(1);
  at::Tensor lp = at::log_softmax(logits.slice(1, 0, T - 1), -1).reshape({-1, V});  // (B*(T-1), V)
  return at::nll_loss(lp, target.slice(1, 1, T).reshape({-1}));
}

namespace {

// The KL branch of lens_loss_grad_layers for contiguous float32 CPU tensors: one fused pass per
// row (row_kl_grad) instead of log_softmax, exp, subtract, scale and a matrix-vector product, each
// a full pass over the (G, B, T, V) logits. The per-row sums are float within blocks of 512 values
// and double across them.
std::pair<std::vector<double>, at::Tensor> kl_loss_grad_fused(const at::Tensor& z, const at::Tensor& target,
                                                              double scale, bool overwrite) {
  const int64_t G = z.size(0), V = z.size(3);
  const int64_t rows = z.numel() / V / G;  // B * T
  at::Tensor p = target.exp().contiguous();                                               // (B, T, V)
  const at::Tensor p_logp = (p * target).sum(-1, false, at::kDouble).reshape({-1}).contiguous();  // (B*T)
  at::Tensor grad = overwrite ? z : at::empty_like(z);  // (G, B, T, V); row_kl_grad reads z[v] before writing grad[v]
  std::vector<double> row_loss(static_cast<size_t>(G * rows));
  const float* zp = z.data_ptr<float>();
  const float* pp = p.data_ptr<float>();
  const double* plp = p_logp.data_ptr<double>();
  float* gp = grad.data_ptr<float>();
  const float coef = static_cast<float>(scale / static_cast<double>(rows));
  at::parallel_for(0, G * rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t t = r % rows;  // the target row this lens row is compared with
      const double p_logq = detail::row_kl_grad(zp + r * V, pp + t * V, V, coef, gp + r * V);
      row_loss[static_cast<size_t>(r)] = plp[t] - p_logq;
    }
  });
  std::vector<double> loss(static_cast<size_t>(G), 0.0);
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t t = 0; t < rows; ++t) loss[static_cast<size_t>(g)] += row_loss[static_cast<size_t>(g * rows + t)];
    loss[static_cast<size_t>(g)] /= static_cast<double>(rows);
  }
  return {loss, grad};
}

}  // namespace

std::pair<std::vector<double>, at::Tensor> lens_loss_grad_layers(const at::Tensor& logits, const at::Tensor& target,
                                                                  LensLoss kind, double scale, bool overwrite_logits) {
  TORCH_CHECK(logits.dim() == 4, "lens_loss_grad_layers: logits must be (G, B, T, V)");
  if (kind == LensLoss::kKL && logits.device().is_cpu() && logits.scalar_type() == at::kFloat &&
      target.scalar_type() == at::kFloat)
    return kl_loss_grad_fused(logits.detach().contiguous(), target.contiguous(), scale,
                              overwrite_logits && logits.is_contiguous());
  const int64_t G = logits.size(0), B = logits.size(1), T = logits.size(2);
  at::Tensor z = logits.detach();
  at::Tensor logq = at::log_softmax(z, -1);  // (G, B, T, V)
  at::Tensor grad = logq.exp();              // q, turned into the gradient in place
  at::Tensor loss;                           // (G) summed over tokens
  double n = 0;
  if (kind == LensLoss::kKL) {
    n = static_cast<double>(B * T);
    at::Tensor p = target.exp();                                   // (B, T, V)
    // sum p (log p - log q) = sum p log p - p . log q: the first term is shared by the layers, the
    // second one matrix-vector product (no (G, B, T, V) temporaries).
    const at::Tensor p_flat = p.reshape({-1});
    loss = at::dot(p_flat, target.reshape({-1})) - at::mv(logq.view({G, -1}), p_flat);
    grad.sub_(p.unsqueeze(0));
  } else {
    n = static_cast<double>(B * (T - 1));
    at::Tensor next = target.slice(1, 1, T).unsqueeze(-1).unsqueeze(0).expand({G, B, T - 1, 1});  // (G, B, T-1, 1)
    grad.slice(2, T - 1, T).zero_();                                 // the last position predicts nothing
    grad.slice(2, 0, T - 1).scatter_add_(-1, next, at::full(next.sizes(), -1.0, grad.options()));
    loss = -logq.slice(2, 0, T - 1).gather(-1, next).sum({1, 2, 3});
  }
  grad.mul_(scale / n);
  at::Tensor l = (loss.to(at::kDouble) / n).cpu();
  return {std::vector<double>(l.data_ptr<double>(), l.data_ptr<double>() + G), grad};
}

std::pair<double, at::Tensor> lens_loss_grad(const at::Tensor& logits, const at::Tensor& target, LensLoss kind) {
  auto r = lens_loss_grad_layers(logits.unsqueeze(0), target, kind);
  return {r.first[0], r.second.squeeze(0)};
}

double lr_multiplier(int64_t step, int64_t steps, int64_t warmup) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  return std::max(0.0, static_cast<double>(steps - step) / static_cast<double>(std::max<int64_t>(1, steps - warmup)));
}

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[static_cast<size_t>(i)], perm[rng() % static_cast<uint64_t>(i + 1)]);
  return perm;
}

namespace {

const char* loss_name(LensLoss l) { return l == LensLoss::kKL ? "kl" : "ce"; }

// FNV-1a over the token ids: a resumed run must see the same data.
std::string data_hash(const at::Tensor& sequences) {
  at::Tensor c = sequences.to(at::kCPU, at::kLong).contiguous();
  const auto* p = reinterpret_cast<const unsigned char*>(c.data_ptr<int64_t>());
  uint64_t h = 1469598103934665603ULL;
  for (int64_t i = 0; i < c.numel() * 8; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return fmt::format("{:016x}", h);
}

// The options a checkpoint must share with the run resuming it (batch size may differ: it only
// changes float rounding).
nlohmann::json run_signature(const TrainOptions& o, const at::Tensor& sequences) {
  nlohmann::json j = {{"steps", o.steps},          {"tokens_per_step", o.tokens_per_step}, {"lr", o.lr},
          {"momentum", o.momentum},    {"weight_decay", o.weight_decay},       {"warmup_steps", o.warmup_steps},
          {"clip_norm", o.clip_norm},  {"loss", loss_name(o.loss)},            {"seed", o.seed},
          {"sequences", sequences.size(0)}, {"seq_len", sequences.size(1)},   {"data_hash", data_hash(sequences)}};
  if (!o.shuffle) j["shuffle"] = false;  // only when set, so checkpoints from before the option still resume
  return j;
}

struct Optim {
  std::vector<at::Tensor> params;
  std::vector<std::string> names;
  std::vector<at::Tensor> momentum;  // undefined until the first step, as in torch.optim.SGD
};

fs::path checkpoint_dir(const TrainOptions& o) { return o.output / "checkpoints"; }

void save_checkpoint(const TrainOptions& o, const Optim& opt, int64_t step, const nlohmann::json& signature) {
  const fs::path dir = checkpoint_dir(o);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError("cannot create " + dir.string() + ": " + ec.message());
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  for (size_t i = 0; i < opt.params.size(); ++i) {
    names.push_back(opt.names[i]);
    tensors.push_back(opt.params[i]);
    if (opt.momentum[i].defined()) {
      names.push_back(opt.names[i] + ".momentum_buffer");
      tensors.push_back(opt.momentum[i]);
    }
  }
  const std::string file = fmt::format("step_{:06d}.pt", step);
  save_tensor_dict(dir / file, names, tensors);
  nlohmann::json j = {{"schema_version", 1}, {"kind", "tuned-lens-checkpoint"}, {"step", step}, {"file", file},
                      {"run", signature}};
  const fs::path latest = dir / "latest.json";
  std::string previous;
  if (fs::exists(latest)) {
    std::ifstream in(latest);
    try {
      previous = nlohmann::json::parse(in).value("file", "");
    } catch (const nlohmann::json::exception&) {
    }
  }
  write_file_atomic(latest, j.dump(2) + "\n");
  if (!previous.empty() && previous != file) fs::remove(dir / previous, ec);  // only after latest.json moved on
}

// Loads the latest checkpoint into `opt`; returns its step.
int64_t load_checkpoint(const TrainOptions& o, Optim& opt, const nlohmann::json& signature) {
  const fs::path latest = checkpoint_dir(o) / "latest.json";
  if (!fs::exists(latest))
    throw UsageError("--resume: no checkpoint in " + checkpoint_dir(o).string() + " (train with --checkpoint-every)");
  nlohmann::json j;
  try {
    std::ifstream in(latest);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(latest.string() + ": not valid JSON: " + e.what());
  }
  if (!j.contains("run") || !j.contains("step") || !j.contains("file"))
    throw ModelError(latest.string() + ": not a tuned-lens checkpoint");
  std::vector<std::string> diffs;
  for (auto it = signature.begin(); it != signature.end(); ++it)
    if (!j["run"].contains(it.key()) || j["run"][it.key()] != it.value())
      diffs.push_back(it.key() + " " + (j["run"].contains(it.key()) ? j["run"][it.key()].dump() : "(none)") +
                      " -> " + it.value().dump());
  for (auto it = j["run"].begin(); it != j["run"].end(); ++it)
    if (!signature.contains(it.key())) diffs.push_back(it.key() + " " + it.value().dump() + " -> (none)");
  if (!diffs.empty()) {
    std::string msg = "--resume: the checkpoint was made with other options or data:";
    for (const auto& d : diffs) msg += " " + d + ";";
    throw UsageError(msg);
  }
  const fs::path file = checkpoint_dir(o) / j["file"].get<std::string>();
  std::map<std::string, at::Tensor> saved;
  for (auto& kv : load_tensor_dict(file)) saved[kv.first] = kv.second;
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < opt.params.size(); ++i) {
    auto it = saved.find(opt.names[i]);
    if (it == saved.end() || it->second.sizes() != opt.params[i].sizes())
      throw ModelError(file.string() + ": missing or misshapen tensor '" + opt.names[i] + "'");
    opt.params[i].copy_(it->second);
    auto m = saved.find(opt.names[i] + ".momentum_buffer");
    opt.momentum[i] = m == saved.end() ? at::Tensor() : m->second.to(opt.params[i].options()).clone();
  }
  return j["step"].get<int64_t>();
}

void validate(const TrainOptions& o, const at::Tensor& sequences) {
  TORCH_CHECK(sequences.dim() == 2, "train: sequences must be (N, T)");
  const int64_t T = sequences.size(1);
  if (o.steps < 1) throw UsageError("--steps must be at least 1");
  if (o.tokens_per_step < T || o.tokens_per_step % T != 0)
    throw UsageError("--tokens-per-step (" + std::to_string(o.tokens_per_step) +
                     ") must be a positive multiple of the sequence length (" + std::to_string(T) + ")");
  if (o.batch_size < 1) throw UsageError("--batch-size must be at least 1");
  if (!(o.lr > 0)) throw UsageError("--lr must be positive");
  if (!(o.momentum >= 0 && o.momentum < 1)) throw UsageError("--momentum must be in [0, 1)");
  if (!(o.weight_decay >= 0)) throw UsageError("--weight-decay must be >= 0");
  if (o.warmup_steps < 0 || o.warmup_steps >= o.steps) throw UsageError("--warmup-steps must be in [0, steps)");
  if (!(o.clip_norm > 0)) throw UsageError("--clip must be positive");
  if (o.checkpoint_every < 0 || o.stop_after < 0) throw UsageError("--checkpoint-every and --stop-after must be >= 0");
  if (o.output.empty()) throw UsageError("no output directory");
}

}  // namespace

TrainResult train_tuned_lens(Model& model, TunedLens& lens, const at::Tensor& sequences, const TrainOptions& o,
                             const std::function<void(const TrainProgress&)>& progress) {
  validate(o, sequences);
  const int64_t N = sequences.size(0), T = sequences.size(1);
  const int64_t L = lens.n_translators();
  const int64_t per_step = o.tokens_per_step / T;  // sequences per optimizer step
  const nlohmann::json signature = run_signature(o, sequences);

  Optim opt;
  opt.params = lens.parameters();
  opt.names = lens.parameter_names();
  opt.momentum.resize(opt.params.size());
  for (auto& p : opt.params) p.requires_grad_(true);

  TrainResult result;
  if (o.resume) {
    result.start_step = load_checkpoint(o, opt, signature);
  } else if (fs::exists(checkpoint_dir(o) / "latest.json")) {
    throw UsageError(checkpoint_dir(o).string() + " holds a checkpoint of an earlier run: pass --resume to continue "
                     "it, or choose another output directory");
  }
  result.steps_done = result.start_step;

  int64_t cached_epoch = -1;
  std::vector<int64_t> order;
  auto sample = [&](int64_t k) {
    if (!o.shuffle) return k % N;
    const int64_t epoch = k / N;
    if (epoch != cached_epoch) {
      order = epoch_permutation(N, o.seed, epoch);
      cached_epoch = epoch;
    }
    return order[static_cast<size_t>(k % N)];
  };

  // Micro-batches of a step are spread over `workers` threads, each single-threaded with its own
  // translator leaves (sharing the parameters' storage) and its own gradients, summed in worker
  // order after the step's micro-batches: deterministic for a given worker count. Small operations
  // parallelise poorly inside one micro-batch: on stories260K two intra-op threads gained 13% over
  // one (21.0k -> 23.7k tokens/s), two workers 40% (-> 31-33k).
  const int64_t n_micro = (per_step + o.batch_size - 1) / o.batch_size;
  const int threads_before = at::get_num_threads();
  // On a GPU one thread keeps the device busy; CPU threads are the resource workers share out.
  const int64_t wanted = o.workers > 0 ? o.workers : model.device().is_cpu() ? threads_before : 1;
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(wanted, n_micro));
  std::vector<std::unique_ptr<TunedLens>> worker_lens;
  std::vector<std::vector<at::Tensor>> worker_params;
  if (workers > 1) {
    for (int64_t w = 0; w < workers; ++w) {
      worker_lens.push_back(std::make_unique<TunedLens>(lens.model(), lens.config().base_model_name_or_path));
      for (int64_t i = 0; i < L; ++i) {
        Translator& t = worker_lens.back()->translator(i);
        t.weight = lens.translator(i).weight.detach().requires_grad_(true);  // same storage, own gradient
        t.bias = lens.translator(i).bias.detach().requires_grad_(true);
      }
      worker_params.push_back(worker_lens.back()->parameters());
    }
  }

  // One micro-batch through the model and lens `wl`; gradients accumulate in wl's parameters.
  auto run_micro = [&](const TunedLens& wl, const std::vector<int64_t>& rows, std::vector<double>& layer_loss) {
    const int64_t B = static_cast<int64_t>(rows.size());
    at::Tensor ids = sequences.index_select(0, at::tensor(rows, at::kLong)).to(model.device());  // (B, T)
    std::vector<at::Tensor> resid(static_cast<size_t>(L));  // (B, T, d) each
    at::Tensor target;
    {
      ScopedStage stage("train_forward");
      c10::InferenceMode guard;
      Hooks hooks;
      for (int64_t l = 0; l < L; ++l)
        hooks.on(lens_layer_hook(l), [&resid, l](const std::string&, const at::Tensor& x) { resid[static_cast<size_t>(l)] = x; });
      at::Tensor final_logits = model.forward(ids, &hooks);  // (B, T, V)
      target = o.loss == LensLoss::kKL ? at::log_softmax(final_logits, -1) : ids;
    }
    const double weight = static_cast<double>(B) / static_cast<double>(per_step);
    // Layers share one final-norm + unembedding pass (and one log-softmax), as many at a time as
    // keep the (G*B, T, V) logits within kLogitsBudget: a few large products instead of L small
    // ones, which matters most when few cores are shared with other work.
    const int64_t layer_bytes = B * T * model.config().vocab_size * 4;
    const int64_t group = std::max<int64_t>(1, std::min<int64_t>(L, kLogitsBudget / std::max<int64_t>(1, layer_bytes)));
    for (int64_t l0 = 0; l0 < L; l0 += group) {
      const int64_t G = std::min(group, L - l0);
      std::vector<int64_t> layers;
      std::vector<at::Tensor> hs;
      for (int64_t l = l0; l < l0 + G; ++l) {
        // Inference tensors cannot be saved for backward: the translator gets an ordinary copy.
        layers.push_back(l);
        hs.push_back(resid[static_cast<size_t>(l)].clone());
        resid[static_cast<size_t>(l)] = at::Tensor();
      }
      at::Tensor logits;
      {
        ScopedStage stage("train_lens_logits");
        logits = wl.logits_many(layers, hs, /*native=*/false);  // (G*B, T, V), graph back to the translators
      }
      std::pair<std::vector<double>, at::Tensor> loss_grad;
      {
        ScopedStage stage("train_loss_grad");
        loss_grad = lens_loss_grad_layers(logits.view({G, B, T, -1}), target, o.loss, weight, /*overwrite_logits=*/true);
      }
      ScopedStage stage("train_backward");
      logits.backward(loss_grad.second.view(logits.sizes()));
      for (int64_t g = 0; g < G; ++g) layer_loss[static_cast<size_t>(l0 + g)] += loss_grad.first[static_cast<size_t>(g)] * weight;
    }
  };

  const auto t0 = std::chrono::steady_clock::now();
  const double base_lr = o.lr * (1.0 - o.momentum);
  for (int64_t step = result.start_step; step < o.steps; ++step) {
    const double lr = base_lr * lr_multiplier(step, o.steps, o.warmup_steps);
    std::vector<std::vector<int64_t>> micro_rows;  // sequences of each micro-batch, in order
    for (int64_t mb = 0; mb < per_step; mb += o.batch_size) {
      micro_rows.emplace_back();
      for (int64_t j = 0; j < std::min(o.batch_size, per_step - mb); ++j)
        micro_rows.back().push_back(sample(step * per_step + mb + j));
    }
    std::vector<double> layer_loss(static_cast<size_t>(L), 0.0);
    if (workers == 1) {
      for (const auto& rows : micro_rows) run_micro(lens, rows, layer_loss);
    } else {
      std::vector<std::vector<double>> losses(static_cast<size_t>(workers), std::vector<double>(static_cast<size_t>(L), 0.0));
      std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
      std::vector<std::thread> pool;
      for (int64_t w = 0; w < workers; ++w) {
        pool.emplace_back([&, w] {
          try {
            at::set_num_threads(1);  // this thread's OpenMP (and so OpenBLAS) team size
            for (size_t m = static_cast<size_t>(w); m < micro_rows.size(); m += static_cast<size_t>(workers))
              run_micro(*worker_lens[static_cast<size_t>(w)], micro_rows[m], losses[static_cast<size_t>(w)]);
          } catch (...) {
            errors[static_cast<size_t>(w)] = std::current_exception();
          }
        });
      }
      for (auto& t : pool) t.join();
      at::set_num_threads(threads_before);
      for (auto& e : errors)
        if (e) std::rethrow_exception(e);
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < opt.params.size(); ++i) {
        at::Tensor sum = worker_params[0][i].grad().clone();
        for (int64_t w = 1; w < workers; ++w) sum.add_(worker_params[static_cast<size_t>(w)][i].grad());
        for (int64_t w = 0; w < workers; ++w) worker_params[static_cast<size_t>(w)][i].mutable_grad().zero_();
        opt.params[i].mutable_grad() = sum;  // the workers hold all of this step's gradient
      }
      for (const auto& wl : losses)
        for (int64_t l = 0; l < L; ++l) layer_loss[static_cast<size_t>(l)] += wl[static_cast<size_t>(l)];
    }
    for (const auto& rows : micro_rows) result.tokens += static_cast<int64_t>(rows.size()) * T;

    double grad_norm = 0;
    {
      ScopedStage stage("train_optimizer");
      at::NoGradGuard no_grad;
      double sq = 0;
      for (auto& p : opt.params) sq += p.grad().to(at::kDouble).pow(2).sum().item<double>();
      grad_norm = std::sqrt(sq);
      const double coef = o.clip_norm / (grad_norm + 1e-6);  // torch.nn.utils.clip_grad_norm_
      for (size_t i = 0; i < opt.params.size(); ++i) {
        at::Tensor& p = opt.params[i];
        at::Tensor g = p.grad();
        if (coef < 1.0) g = g * coef;
        if (o.weight_decay != 0) g = g + p * o.weight_decay;
        // torch.optim.SGD: buf = g on the first step, then buf = momentum * buf + g; Nesterov steps
        // along g + momentum * buf.
        if (!opt.momentum[i].defined()) {
          opt.momentum[i] = g.clone();
        } else {
          opt.momentum[i].mul_(o.momentum).add_(g);
        }
        g = g + opt.momentum[i] * o.momentum;
        p.sub_(g * lr);
        p.mutable_grad().zero_();
      }
    }
    result.steps_done = step + 1;
    result.last_layer_loss = layer_loss;

    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) {
      TrainProgress pr;
      pr.step = step + 1;
      pr.steps = o.steps;
      for (double v : layer_loss) pr.loss += v;
      pr.lr = lr;
      pr.grad_norm = grad_norm;
      pr.tokens_per_s = elapsed > 0 ? static_cast<double>(result.tokens) / elapsed : 0;
      pr.eta_s = elapsed / static_cast<double>(step + 1 - result.start_step) * static_cast<double>(o.steps - step - 1);
      pr.layer_loss = layer_loss;
      progress(pr);
    }
    const bool last = step + 1 == o.steps;
    const bool stop = o.stop_after > 0 && step + 1 >= o.stop_after && !last;
    if (!last && (stop || (o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0)))
      save_checkpoint(o, opt, step + 1, signature);
    if (stop) break;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& p : opt.params) {
    p.mutable_grad() = at::Tensor();
    p.requires_grad_(false);
  }
  if (result.steps_done == o.steps) {
    lens.save(o.output);
    result.finished = true;
  }
  return result;
}

}  // namespace lens
