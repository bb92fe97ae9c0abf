// `lens run`: load a model, tokenize a prompt (or take token ids), run the logit lens at every
// chosen layer and position, print a table or write JSON. Flag parsing and output only; the
// work is in the library (Model, run_lens, run_document_json).
#include <unistd.h>

#include <chrono>
#include <fmt/format.h>
#include <iostream>
#include <memory>

#include "batch.h"
#include "commands.h"
#include "lens/attention.h"
#include "lens/error.h"
#include "lens/lens.h"
#include "lens/model.h"
#include "lens/output.h"
#include "lens/registry.h"
#include "lens/runner.h"
#include "lens/timing.h"
#include "lens/tokenizer.h"
#include "lens/tuned_lens.h"
#include "util/atomic_file.h"

namespace lens::cli {

namespace {

// Stages timed so far, in seconds: {"load": 0.02, "forward": 0.11, ...}.
nlohmann::json timing_json() {
  nlohmann::json t = nlohmann::json::object();
  for (const auto& [stage, seconds] : stage_times().stages()) t[stage] = seconds;
  return t;
}

struct RunOptions {
  std::string model;
  std::string prompt;
  bool have_prompt = false;
  std::string token_ids;
  int top_k = 5;
  std::string layers = "all";
  std::string positions = "all";
  std::vector<std::string> targets;
  std::vector<int64_t> target_ids;
  bool json = false;
  std::string output;
  int threads = 0;
  std::string dtype = "auto";
  std::string device = "cpu";
  bool no_special = false;
  bool quiet = false;
  bool strict = false;  // --strict
  bool timing = false;
  bool attention = false;
  AttentionOptions attn;
  std::string attention_format = "auto";
  std::string view;
  std::string svg;
  std::vector<std::string> lenses;  // "logit", "tuned:DIR", "both:DIR"
  BatchFlags batch;  // --prompts etc. (batch.cpp)
};

// Inline attention in the JSON up to this many values (e.g. 16 tokens x 32 heads x 8 layers);
// beyond it a float16 sidecar next to the output file keeps the JSON small.
constexpr int64_t kInlineAttentionValues = 1 << 16;

void run_run(const RunOptions& o) {
  set_quiet(o.quiet);
  const RuntimeInfo runtime = set_threads(o.threads);
  if (o.timing) log_runtime(runtime);
  if (o.have_prompt + !o.token_ids.empty() + !o.batch.prompts.empty() != 1)
    throw UsageError("give exactly one of --prompt, --token-ids and --prompts");
  const auto t0 = std::chrono::steady_clock::now();
  auto [resolved, model, tok] = load_model(o.model, o.dtype, o.device, o.strict);
  const ModelConfig& cfg = model->config();
  const auto t1 = std::chrono::steady_clock::now();
  stage_times().add("load", std::chrono::duration<double>(t1 - t0).count());
  log(fmt::format("loaded {} ({}, {} layers, d_model {}, {}) from {} in {:.2f} s", resolved.name, cfg.architecture,
                  cfg.n_layer, cfg.d_model, model->dtype_name(), resolved.path.string(),
                  std::chrono::duration<double>(t1 - t0).count()));

  LensOptions lens_opts;
  lens_opts.top_k = o.top_k;
  lens_opts.layers = o.layers;
  lens_opts.positions = o.positions;
  lens_opts.targets = o.target_ids;
  for (const auto& t : o.targets) {
    if (!tok) throw UsageError("--target needs a tokenizer; use --target-id");
    auto tids = tok->encode(t, false);
    if (tids.empty()) throw UsageError("--target '" + t + "' encodes to no tokens");
    if (tids.size() > 1) log(fmt::format("note: --target '{}' is {} tokens; using its first", t, tids.size()));
    lens_opts.targets.push_back(tids.front());
  }
  if (!o.batch.prompts.empty()) {
    // Batches run the logit lens only; say so rather than silently drop the other outputs.
    if (o.attention || !o.view.empty() || !o.svg.empty())
      throw UsageError("--attention, --view and --svg work on single prompts, not with --prompts");
    for (const auto& l : o.lenses)
      if (l != "logit") throw UsageError("--lens " + l + " works on single prompts; batches run the logit lens");
    run_batch(*model, tok.get(), resolved.name, lens_opts, !o.no_special, o.output, o.batch, runtime);
    if (o.timing) log_timing();
    return;
  }
  if (o.batch.store_logprobs && o.output.empty()) throw UsageError("--store-logprobs needs -o FILE (the log-probs go next to it)");
  lens_opts.keep_logprobs = o.batch.store_logprobs;
  PromptInput in;
  if (o.have_prompt) {
    in.text = o.prompt;
  } else {
    in.ids = parse_int_list(o.token_ids, "--token-ids");
  }
  in.add_special = !o.no_special;

  // --lens logit | tuned:DIR | both:DIR (repeatable); default: the logit lens.
  std::vector<std::unique_ptr<Lens>> owned;
  for (const std::string& spec : o.lenses.empty() ? std::vector<std::string>{"logit"} : o.lenses) {
    const size_t colon = spec.find(':');
    const std::string kind = spec.substr(0, colon), dir = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if ((kind == "logit") != dir.empty() || (kind != "logit" && kind != "tuned" && kind != "both"))
      throw UsageError("--lens '" + spec + "': use logit, tuned:DIR or both:DIR");
    if (kind != "tuned") owned.push_back(std::make_unique<LogitLens>(*model));
    if (kind != "logit") owned.push_back(TunedLens::load(*model, dir));
  }
  std::vector<const Lens*> lenses;
  for (const auto& l : owned) lenses.push_back(l.get());
  const bool want_attn = o.attention || !o.view.empty();
  RunDocument doc = run_prompt(*model, tok.get(), resolved.name, lenses, in, lens_opts, want_attn ? &o.attn : nullptr);
  doc.runtime = runtime;
  const TokenNamer namer = make_namer(tok.get());
  const auto t2 = std::chrono::steady_clock::now();
  log(fmt::format("ran {} tokens in {:.2f} s", doc.tokens.size(), std::chrono::duration<double>(t2 - t1).count()));
  if (!doc.lenses.front().final_ok)
    log(fmt::format("warning: last layer through the lens differs from the model's logits by {:.3g}",
                    doc.lenses.front().final_max_abs_diff));

  nlohmann::json j;
  {
    ScopedStage stage("json");
    j = run_document_json(doc, namer);
  }
  if (doc.attention) {
    const auto& a = *doc.attention;
    const int64_t values = static_cast<int64_t>(a.layers.size() * a.heads.size()) * a.seq_len * a.seq_len;
    bool sidecar = o.attention_format == "sidecar" || (o.attention_format == "auto" && values > kInlineAttentionValues);
    std::filesystem::path side;
    if (sidecar) {
      const std::string base = !o.output.empty() ? o.output : !o.view.empty() ? o.view : "";
      if (base.empty()) throw UsageError("attention this large goes to a sidecar file: pass -o FILE (or --attention-format inline)");
      side = std::filesystem::path(base).replace_extension(".attn.safetensors");
    }
    j["attention"] = attention_json(a, side);
    int sinks = 0;
    for (const auto& s : a.sinks) sinks += s.sink;
    log(fmt::format("attention: {} layers x {} heads captured, {} sink heads (>= {:.2f} mass on token 0)",
                    a.layers.size(), a.heads.size(), sinks, a.sink_threshold));
  }
  if (!o.view.empty() || !o.svg.empty()) {
    write_view_files(j, std::filesystem::path(o.output.empty() ? o.view : o.output).parent_path(), o.view, o.svg);
    if (o.output.empty() && !o.json) {
      if (o.timing) log_timing();
      return;
    }
  }
  if (o.json || !o.output.empty()) {
    if (o.batch.store_logprobs) store_logprobs_sidecar(j, doc, o.output);
    if (o.timing) j["timing"] = timing_json();  // the stages so far: serialising and writing come after
    std::string text;
    {
      ScopedStage stage("write");
      text = dump_json(j, o.json && o.output.empty() ? 2 : -1) + "\n";
      if (!o.output.empty()) write_file_atomic(o.output, text);
    }
    if (!o.output.empty()) log("wrote " + o.output);
    if (o.timing) log_timing();
    if (o.json && o.output.empty()) std::cout << text;
    return;
  }
  if (o.timing) log_timing();
  for (const LensResult& r : doc.lenses) {
    if (doc.lenses.size() > 1) std::cout << r.lens << " lens:\n";
    std::cout << lens_table(doc, r, namer, terminal_width());
  }
  if (doc.attention) {
    std::string line;
    for (const auto& s : doc.attention->sinks)
      if (s.sink) line += fmt::format(" L{}H{} ({:.2f})", s.layer, s.head, s.bos_mass);
    std::cout << "attention sink heads (mass on token 0):" << (line.empty() ? " none" : line) << "\n";
  }
}

}  // namespace

void setup_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Run the logit lens (or a tuned lens) on a prompt");
  cmd->add_option("-m,--model", o->model, "Model directory, alias (see 'lens models') or HF repo id")->required();
  auto* prompt = cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* ids = cmd->add_option("--token-ids", o->token_ids, "Comma-separated token ids instead of a prompt");
  prompt->excludes(ids);
  cmd->add_option("-k,--top-k", o->top_k, "Top tokens per layer and position")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("--layers", o->layers, "Lens layers: all, or a list like 0,3,10-12,-1 (0 = embeddings)")->capture_default_str();
  cmd->add_option("--positions", o->positions, "Positions: all, last, or a list like 0,5,-1")->capture_default_str();
  cmd->add_option("--target", o->targets, "Token (text) whose rank and probability to report; repeatable");
  cmd->add_option("--target-id", o->target_ids, "Token id whose rank and probability to report; repeatable");
  cmd->add_flag("--json", o->json, "Print JSON on stdout instead of the table");
  cmd->add_option("-o,--output", o->output, "Write JSON to this file (atomically)");
  add_runtime_flags(cmd, o->threads, o->dtype, o->device, o->quiet);
  add_strict_flag(cmd, o->strict);
  cmd->add_flag("--timing", o->timing, "Report seconds per stage (load, forward, lens_logits, lens_reduce, json, write) "
                                       "on stderr and as \"timing\" in the JSON");
  cmd->add_flag("--no-special", o->no_special, "Do not add special tokens (BOS) when tokenizing");
  cmd->add_option("--lens", o->lenses, "logit, tuned:DIR (a tuned lens directory) or both:DIR; repeatable");
  cmd->add_flag("--attention", o->attention, "Capture attention patterns and report attention sinks");
  cmd->add_option("--attention-layers", o->attn.layers, "Blocks whose attention to capture (index spec)")->capture_default_str();
  cmd->add_option("--attention-heads", o->attn.heads, "Heads to capture (index spec)")->capture_default_str();
  cmd->add_flag("--qk", o->attn.qk, "Also capture queries and keys (for the neuron view)");
  cmd->add_option("--sink-threshold", o->attn.sink_threshold, "Mean mass on token 0 that flags a sink head")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--attention-format", o->attention_format, "auto | inline | sidecar (float16 safetensors next to -o)")
      ->check(CLI::IsMember({"auto", "inline", "sidecar"}))->capture_default_str();
  cmd->add_option("--view", o->view, "Also write the offline HTML page (lens view) to this file");
  cmd->add_option("--svg", o->svg, "Also write an SVG heat map of the logit-lens table");
  add_batch_flags(cmd, o->batch);
  cmd->callback([o, prompt] {
    o->have_prompt = prompt->count() > 0;
    run_run(*o);
  });
}

}  // namespace lens::cli
