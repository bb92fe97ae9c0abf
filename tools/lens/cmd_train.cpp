// `lens train`: train a tuned lens for a model on text files, save it in the tuned-lens package's
// format, and (with held-out data) print the logit and tuned lens KL per layer. Flag parsing,
// logging and output only; the work is in the library (read_documents, pack_documents,
// train_tuned_lens, evaluate_lenses).
#include <chrono>
#include <fmt/format.h>
#include <iostream>
#include <memory>

#include "commands.h"
#include "lens/error.h"
#include "lens/lens_eval.h"
#include "lens/model.h"
#include "lens/registry.h"
#include "lens/text_data.h"
#include "lens/tokenizer.h"
#include "lens/train.h"
#include "lens/tuned_lens.h"

namespace lens::cli {

namespace {

struct TrainCliOptions {
  std::string model;
  std::vector<std::string> data;
  std::vector<std::string> eval_data;
  double val_fraction = 0;
  TextDataOptions text;
  std::string output;
  int64_t seq_len = 0;
  std::string loss = "kl";
  int64_t eval_batch_size = 8;
  TrainOptions train;
  int threads = 0;
  std::string dtype = "auto";
  std::string device = "cpu";
  bool quiet = false;
  bool strict = false;  // --strict
  bool timing = false;
};

std::string format_eta(double s) {
  const auto t = static_cast<int64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60) : fmt::format("{}m{:02d}s", t / 60, t % 60);
}

std::vector<std::filesystem::path> to_paths(const std::vector<std::string>& v) {
  return std::vector<std::filesystem::path>(v.begin(), v.end());
}

int64_t eos_of(const Model& model, const Tokenizer& tok) {
  if (auto e = tok.eos_id()) return *e;
  if (auto e = model.config().eos_id) return *e;
  throw ModelError(model.dir().string() + ": neither the tokenizer nor config.json names an EOS token to join documents");
}

void run_train(TrainCliOptions o) {
  set_quiet(o.quiet);
  const RuntimeInfo runtime = set_threads(o.threads);
  if (o.timing) log_runtime(runtime);
  if (o.val_fraction != 0 && !o.eval_data.empty()) throw UsageError("give --val-fraction or --eval-data, not both");
  o.train.loss = o.loss == "ce" ? LensLoss::kCE : LensLoss::kKL;
  o.train.output = o.output;

  auto [resolved, model, tok] = load_model(o.model, o.dtype, o.device, o.strict);
  const ModelConfig& cfg = model->config();
  if (!tok) throw ModelError(resolved.path.string() + " has no tokenizer files; lens train needs one to read text");
  const int64_t seq_len = o.seq_len > 0 ? o.seq_len : std::min<int64_t>(cfg.n_ctx, 2048);
  if (seq_len > cfg.n_ctx)
    throw UsageError(fmt::format("--seq-len {} is longer than the model's context ({})", seq_len, cfg.n_ctx));

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t eos = eos_of(*model, *tok);
  PackedData all = pack_documents(read_documents(to_paths(o.data), o.text), *tok, eos, seq_len);
  PackedData train = all, val;
  if (o.val_fraction != 0) {
    std::tie(train, val) = split_tail(all, o.val_fraction);
  } else if (!o.eval_data.empty()) {
    val = pack_documents(read_documents(to_paths(o.eval_data), o.text), *tok, eos, seq_len);
  }
  const double t_data = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t per_step = o.train.tokens_per_step / seq_len;
  log(fmt::format("data: {} training sequences of {} tokens{} ({:.1f} s to read and tokenize)",
                  train.sequences.size(0), seq_len,
                  val.sequences.defined() ? fmt::format(", {} held out", val.sequences.size(0)) : "", t_data));
  if (o.train.tokens_per_step % seq_len == 0 && per_step * o.train.steps > train.sequences.size(0))
    log(fmt::format("note: {} steps x {} sequences is {:.1f} passes over the training data", o.train.steps, per_step,
                    static_cast<double>(per_step * o.train.steps) / static_cast<double>(train.sequences.size(0))));

  TunedLens lens(*model, resolved.repo.empty() ? resolved.path.string() : resolved.repo);
  auto last_log = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  auto on_progress = [&](const TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (p.step != p.steps && p.step != 1 && now - last_log < std::chrono::seconds(1)) return;
    last_log = now;
    log(fmt::format("step {}/{}  loss {:.4f}  lr {:.4g}  grad norm {:.3g}  {:.0f} tokens/s  ETA {}", p.step, p.steps,
                    p.loss, p.lr, p.grad_norm, p.tokens_per_s, format_eta(p.eta_s)));
  };
  TrainResult r = train_tuned_lens(*model, lens, train.sequences, o.train, on_progress);
  if (r.start_step > 0) log(fmt::format("resumed from step {}", r.start_step));
  if (o.timing) log_timing();
  log(fmt::format("trained steps {}..{} on {} tokens in {:.2f} s ({:.0f} tokens/s)", r.start_step + 1, r.steps_done,
                  r.tokens, r.seconds, r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0.0));
  if (!r.finished) {
    log(fmt::format("stopped after step {}; continue with --resume", r.steps_done));
    return;
  }
  log("wrote " + o.output + " (config.json, params.pt)");

  if (val.sequences.defined()) {
    LogitLens logit(*model);
    EvalResult ev = evaluate_lenses(*model, {&logit, &lens}, val.sequences, o.eval_batch_size, val.nats_to_bpb());
    std::cout << "held-out: " << eval_table(ev);
  }
}

}  // namespace

void setup_train(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  auto* cmd = app.add_subcommand("train", "Train a tuned lens (per-layer affine translators) on text");
  cmd->add_option("-m,--model", o->model, "Model directory, alias (see 'lens models') or HF repo id")->required();
  cmd->add_option("--data", o->data, "Training text files (.jsonl: one JSON object per line; else plain text)")
      ->required();
  cmd->add_option("-o,--output", o->output, "Lens directory to write (config.json, params.pt, checkpoints/)")
      ->required();
  cmd->add_option("--eval-data", o->eval_data, "Held-out text files, evaluated after training");
  cmd->add_option("--val-fraction", o->val_fraction, "Hold out this fraction of the packed sequences instead");
  cmd->add_option("--text-field", o->text.text_field, "JSONL field holding the text")->capture_default_str();
  cmd->add_option("--separator", o->text.separator, "Document separator in plain text files ('' = whole file)")
      ->capture_default_str();
  cmd->add_option("--seq-len", o->seq_len, "Tokens per sequence (default: min(n_ctx, 2048))")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--steps", o->train.steps, "Optimizer steps")->check(CLI::Range(int64_t{1}, int64_t{1} << 40))->capture_default_str();
  cmd->add_option("--tokens-per-step", o->train.tokens_per_step, "Tokens per step (a multiple of --seq-len)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--batch-size", o->train.batch_size, "Sequences per forward pass; gradients accumulate to a step")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--workers", o->train.workers,
                  "Micro-batches trained side by side, one thread each (0: one per --threads, at most the "
                  "micro-batches per step); results differ only by float rounding")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--timing", o->timing, "Report seconds per training stage (summed over workers) on stderr");
  cmd->add_option("--lr", o->train.lr, "Learning-rate scale: SGD step size is lr * (1 - momentum)")->capture_default_str();
  cmd->add_option("--momentum", o->train.momentum, "Nesterov momentum")->capture_default_str();
  cmd->add_option("--weight-decay", o->train.weight_decay, "Weight decay (toward the identity map)")->capture_default_str();
  cmd->add_option("--warmup-steps", o->train.warmup_steps, "Linear warmup steps before the linear decay")->capture_default_str();
  cmd->add_option("--clip", o->train.clip_norm, "Gradient norm clipping")->capture_default_str();
  cmd->add_option("--loss", o->loss, "kl: KL(final || lens) at each position; ce: cross-entropy to the next token")
      ->check(CLI::IsMember({"kl", "ce"}))
      ->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "Seed for the order of sequences")->capture_default_str();
  cmd->add_flag("!--no-shuffle", o->train.shuffle, "Visit sequences in data order instead of a seeded shuffle");
  cmd->add_option("--checkpoint-every", o->train.checkpoint_every, "Save a checkpoint every N steps (0 = never)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--stop-after", o->train.stop_after, "Stop after step N with a checkpoint (continue with --resume)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_flag("--resume", o->train.resume, "Continue from the last checkpoint in <output>/checkpoints");
  cmd->add_option("--eval-batch-size", o->eval_batch_size, "Sequences per forward pass when evaluating")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  add_runtime_flags(cmd, o->threads, o->dtype, o->device, o->quiet);
  add_strict_flag(cmd, o->strict);
  cmd->callback([o] { run_train(*o); });
}

}  // namespace lens::cli
