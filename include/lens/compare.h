// Regression checks between two sets of lens outputs (a baseline and a current run): per layer and
// position, top-1 agreement, top-k overlap and KL(baseline || current) between the two lens
// distributions. KL is exact when both sides stored full log-probs (--store-logprobs sidecars),
// otherwise estimated from the saved top-k probabilities plus the remaining mass. Reading the
// files and judging against tolerances is here; printing and exit codes are the CLI's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lens {

/// Limits beyond which outputs count as drifted.
struct Tolerances {
  double min_top1_agreement = 1.0;  // fraction of cells whose top-1 token agrees
  double min_topk_overlap = 0.8;    // mean over cells of |top-k(A) & top-k(B)| / k
  double max_kl = 0.01;             // nats, largest KL(baseline || current) over cells
  double max_mean_kl = 0.001;       // nats, mean KL over cells
};

/// Reads tolerances from a JSON object with any of the fields above (unknown keys are an error);
/// fields not given keep the values in `base`. Throws InputError naming the file.
Tolerances read_tolerances(const std::filesystem::path& path, Tolerances base);

/// Aggregates over a set of cells (layer x position, over one or many records).
struct DiffStats {
  int64_t cells = 0;
  int64_t top1_agree = 0;
  double topk_overlap_sum = 0;
  double kl_sum = 0;
  double kl_max = 0;
  double top1_agreement() const { return cells ? static_cast<double>(top1_agree) / cells : 1.0; }
  double topk_overlap() const { return cells ? topk_overlap_sum / cells : 1.0; }
  double kl_mean() const { return cells ? kl_sum / cells : 0.0; }
  void add(const DiffStats& o);
};

struct LayerDiff {
  int64_t layer = 0;
  DiffStats stats;
};

struct RecordDiff {
  int64_t index = 0;
  nlohmann::json id;             // the record's id (null when it has none)
  bool exact_kl = false;         // KL from full log-probs rather than top-k
  std::vector<LayerDiff> layers;
  DiffStats stats;
  std::vector<std::string> problems;  // e.g. a prompt that failed on one side only
};

struct CompareReport {
  std::string baseline, current;  // file paths
  Tolerances tolerances;
  std::vector<RecordDiff> records;
  DiffStats stats;
  bool exact_kl = false;  // every compared record had full log-probs on both sides
  std::vector<std::string> drift;  // reasons; empty means within tolerance
  bool ok() const { return drift.empty(); }
};

/// Compares two lens output files: each a single JSON document (`lens run -o`) or JSONL (one
/// record per line, `lens run --prompts`). Records are matched by "index"; both sides must hold
/// the same indices, prompts (token ids), model shape (architecture, layers, widths, vocabulary),
/// layers and positions. Throws InputError for unreadable or mismatched inputs.
CompareReport compare_files(const std::filesystem::path& baseline, const std::filesystem::path& current,
                            const Tolerances& tol);

/// The report as JSON (schema_version 1): tolerances, totals, per-record and per-layer figures.
nlohmann::json report_json(const CompareReport& r);

/// Reads a JSON document or a JSONL file (every line a complete JSON object) into records.
/// Throws InputError naming the file and line.
std::vector<nlohmann::json> read_records(const std::filesystem::path& path);

}  // namespace lens
