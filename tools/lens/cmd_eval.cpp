// `lens eval`: per-layer cross-entropy, entropy and KL to the final layer of the logit lens (and a
// tuned lens with --lens) on held-out text; a table on the terminal, JSON with -o / --json.
// Flag parsing and output only; the work is in evaluate_lenses.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "commands.h"
#include "lens/error.h"
#include "lens/lens_eval.h"
#include "lens/model.h"
#include "lens/output.h"
#include "lens/registry.h"
#include "lens/text_data.h"
#include "lens/tokenizer.h"
#include "lens/tuned_lens.h"
#include "util/atomic_file.h"

namespace lens::cli {

namespace {

struct EvalOptions {
  std::string model;
  std::string lens_dir;
  std::vector<std::string> data;
  TextDataOptions text;
  int64_t seq_len = 0;
  int64_t max_sequences = 0;
  int64_t batch_size = 8;
  std::string output;
  bool json = false;
  int threads = 0;
  std::string dtype = "auto";
  std::string device = "cpu";
  bool quiet = false;
  bool strict = false;  // --strict
};

void run_eval(const EvalOptions& o) {
  set_quiet(o.quiet);
  set_threads(o.threads);
  auto [resolved, model, tok] = load_model(o.model, o.dtype, o.device, o.strict);
  const ModelConfig& cfg = model->config();
  if (!tok) throw ModelError(resolved.path.string() + " has no tokenizer files; lens eval needs one to read text");
  std::unique_ptr<TunedLens> tuned;
  if (!o.lens_dir.empty()) tuned = TunedLens::load(*model, o.lens_dir);
  const int64_t seq_len = o.seq_len > 0 ? o.seq_len : std::min<int64_t>(cfg.n_ctx, 2048);
  if (seq_len > cfg.n_ctx)
    throw UsageError(fmt::format("--seq-len {} is longer than the model's context ({})", seq_len, cfg.n_ctx));
  int64_t eos = 0;
  if (auto e = tok->eos_id()) {
    eos = *e;
  } else if (auto e2 = cfg.eos_id) {
    eos = *e2;
  } else {
    throw ModelError(resolved.path.string() + ": no EOS token to join documents");
  }
  PackedData data = pack_documents(
      read_documents(std::vector<std::filesystem::path>(o.data.begin(), o.data.end()), o.text), *tok, eos, seq_len);
  at::Tensor seqs = data.sequences;
  if (o.max_sequences > 0 && seqs.size(0) > o.max_sequences) seqs = seqs.slice(0, 0, o.max_sequences);
  log(fmt::format("evaluating {} sequences of {} tokens ({} lens{})", seqs.size(0), seq_len, tuned ? 2 : 1,
                  tuned ? "es: logit, tuned" : ": logit"));

  LogitLens logit(*model);
  std::vector<const Lens*> lenses = {&logit};
  if (tuned) lenses.push_back(tuned.get());
  EvalResult r = evaluate_lenses(*model, lenses, seqs, o.batch_size, data.nats_to_bpb());

  nlohmann::json j = eval_json(r);
  j["model"] = {{"name", resolved.name}, {"path", resolved.path.string()}, {"n_layer", cfg.n_layer},
                {"d_model", cfg.d_model}, {"dtype", model->dtype_name()}};
  j["data"]["files"] = o.data;
  if (tuned) j["tuned_lens"] = o.lens_dir;
  if (!o.output.empty()) {
    write_file_atomic(o.output, dump_json(j, 2) + "\n");
    log("wrote " + o.output);
  }
  if (o.json) {
    std::cout << dump_json(j, 2) << "\n";
  } else {
    std::cout << eval_table(r);
  }
}

}  // namespace

void setup_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate the logit lens (and a tuned lens) per layer on held-out text");
  cmd->add_option("-m,--model", o->model, "Model directory, alias (see 'lens models') or HF repo id")->required();
  cmd->add_option("--lens", o->lens_dir, "Tuned lens directory (config.json + params.pt) to evaluate as well");
  cmd->add_option("--data", o->data, "Text files (.jsonl: one JSON object per line; else plain text)")->required();
  cmd->add_option("--text-field", o->text.text_field, "JSONL field holding the text")->capture_default_str();
  cmd->add_option("--separator", o->text.separator, "Document separator in plain text files ('' = whole file)")
      ->capture_default_str();
  cmd->add_option("--seq-len", o->seq_len, "Tokens per sequence (default: min(n_ctx, 2048))")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--max-sequences", o->max_sequences, "Evaluate at most this many sequences (0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--batch-size", o->batch_size, "Sequences per forward pass")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("-o,--output", o->output, "Write JSON to this file (atomically)");
  cmd->add_flag("--json", o->json, "Print JSON on stdout instead of the table");
  add_runtime_flags(cmd, o->threads, o->dtype, o->device, o->quiet);
  add_strict_flag(cmd, o->strict);
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace lens::cli
