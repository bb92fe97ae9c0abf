// `lens diff A B` and `lens check --baseline BASE CURRENT`: compare two lens outputs (lens::compare_files)
// against tolerances. Human summary on stderr, JSON report with -o. Exit codes as diff(1):
// 0 within tolerance, 1 drift, 2 unusable or mismatched inputs (and bad flags).
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "lens/compare.h"
#include "lens/error.h"
#include "lens/output.h"
#include "util/atomic_file.h"

namespace lens::cli {

namespace {

struct CheckOptions {
  std::string baseline, current;
  std::string output;
  std::string tolerances_file;
  Tolerances tol;
  std::vector<CLI::Option*> tol_flags;  // given on the command line: override the file
  bool per_layer = false;               // diff: per-layer table of every record
  bool quiet = false;
};

void print_summary(const CompareReport& r, bool per_layer) {
  const DiffStats& s = r.stats;
  std::string text = fmt::format("{} vs {}: {} record(s), {} cells, KL {}\n", r.baseline, r.current, r.records.size(),
                                 s.cells, r.exact_kl ? "exact (stored log-probs)" : "estimated from top-k");
  text += fmt::format("  top-1 agreement {:.4f} (min {:g})  top-k overlap {:.4f} (min {:g})  KL mean {:.3g} (max {:g})  "
                      "KL max {:.3g} nats (max {:g})\n",
                      s.top1_agreement(), r.tolerances.min_top1_agreement, s.topk_overlap(),
                      r.tolerances.min_topk_overlap, s.kl_mean(), r.tolerances.max_mean_kl, s.kl_max,
                      r.tolerances.max_kl);
  for (const auto& d : r.records) {
    const bool show = per_layer || !d.problems.empty() || d.stats.top1_agreement() < r.tolerances.min_top1_agreement ||
                      d.stats.kl_max > r.tolerances.max_kl;
    if (!show) continue;
    text += fmt::format("  record {}{}: top-1 {:.3f}  top-k {:.3f}  KL mean {:.3g} max {:.3g}\n", d.index,
                        d.id.is_null() ? "" : " (id " + d.id.dump() + ")", d.stats.top1_agreement(),
                        d.stats.topk_overlap(), d.stats.kl_mean(), d.stats.kl_max);
    for (const auto& p : d.problems) text += "    " + p + "\n";
    if (per_layer)
      for (const auto& l : d.layers)
        text += fmt::format("    layer {:>3}: top-1 {:.3f}  top-k {:.3f}  KL mean {:.3g} max {:.3g}\n", l.layer,
                            l.stats.top1_agreement(), l.stats.topk_overlap(), l.stats.kl_mean(), l.stats.kl_max);
  }
  text += r.ok() ? "ok: within tolerance\n" : "";
  std::cerr << text;
}

void run_check(const CheckOptions& o) {
  set_quiet(o.quiet);
  CompareReport report;
  try {
    Tolerances tol = o.tol;
    if (!o.tolerances_file.empty()) {
      // The file sets the base; flags given on the command line win.
      Tolerances from_file = read_tolerances(o.tolerances_file, Tolerances{});
      double* fields[] = {&from_file.min_top1_agreement, &from_file.min_topk_overlap, &from_file.max_kl,
                          &from_file.max_mean_kl};
      const double flags[] = {tol.min_top1_agreement, tol.min_topk_overlap, tol.max_kl, tol.max_mean_kl};
      for (size_t i = 0; i < 4; ++i)
        if (o.tol_flags[i]->count() > 0) *fields[i] = flags[i];
      tol = from_file;
    }
    report = compare_files(o.baseline, o.current, tol);
    if (!o.output.empty()) write_file_atomic(o.output, dump_json(report_json(report), 2) + "\n");
  } catch (const Error& e) {
    throw Error(e.what(), ExitCode::kUsage);  // documented: 2 for unreadable or mismatched inputs
  }
  if (!o.quiet) print_summary(report, o.per_layer);
  if (!report.ok()) {
    std::string why;
    for (const auto& d : report.drift) why += (why.empty() ? "" : "; ") + d;
    throw Error("drift beyond tolerance: " + why, ExitCode::kDrift);
  }
}

void add_common(CLI::App* cmd, const std::shared_ptr<CheckOptions>& o) {
  o->tol_flags = {
      cmd->add_option("--min-top1-agreement", o->tol.min_top1_agreement, "Least fraction of cells whose top-1 agrees")
          ->check(CLI::Range(0.0, 1.0))
          ->capture_default_str(),
      cmd->add_option("--min-topk-overlap", o->tol.min_topk_overlap, "Least mean top-k overlap (fraction of k)")
          ->check(CLI::Range(0.0, 1.0))
          ->capture_default_str(),
      cmd->add_option("--max-kl", o->tol.max_kl, "Largest KL(baseline || current) of any cell, nats")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str(),
      cmd->add_option("--max-mean-kl", o->tol.max_mean_kl, "Largest mean KL over cells, nats")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str(),
  };
  cmd->add_option("--tolerances", o->tolerances_file,
                  "JSON file with any of min_top1_agreement, min_topk_overlap, max_kl, max_mean_kl (flags win)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "Write the JSON report here (atomically)");
  cmd->add_flag("-q,--quiet", o->quiet, "No summary on stderr");
}

}  // namespace

void setup_check(CLI::App& app) {
  auto d = std::make_shared<CheckOptions>();
  auto* diff = app.add_subcommand("diff", "Compare two lens outputs (JSON or JSONL) layer by layer");
  diff->add_option("a", d->baseline, "First (reference) output")->required();
  diff->add_option("b", d->current, "Second output")->required();
  add_common(diff, d);
  diff->callback([d] {
    d->per_layer = true;
    run_check(*d);
  });

  auto c = std::make_shared<CheckOptions>();
  auto* check = app.add_subcommand("check", "Check a lens output against a recorded baseline (for CI)");
  check->add_option("--baseline", c->baseline, "Baseline output (JSON or JSONL)")->required();
  check->add_option("current", c->current, "Current output (JSON or JSONL)")->required();
  add_common(check, c);
  check->callback([c] { run_check(*c); });
}

}  // namespace lens::cli
