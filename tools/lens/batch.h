// `lens run --prompts FILE`: the batch mode of `lens run` (flags, prompt files, resumable JSONL
// output, progress), and the --store-logprobs sidecar shared with single runs. cmd_run.cpp only
// adds these flags and hands over once the model is loaded.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "lens/lens.h"
#include "lens/model.h"
#include "lens/output.h"
#include "lens/tokenizer.h"

namespace lens::cli {

struct BatchFlags {
  std::string prompts;  // --prompts FILE (empty: single run)
  bool resume = false;
  std::string shard;    // "K/N"
  int batch_size = 16;
  bool store_logprobs = false;
};

/// Adds --prompts, --resume, --shard, --batch-size, --store-logprobs to `lens run`.
void add_batch_flags(CLI::App* cmd, BatchFlags& flags);

/// Runs every prompt of flags.prompts (this shard's share) and streams one record per prompt to
/// `output` (stdout when empty), each with `runtime`. Throws Error(kDrift) at the end when some prompts failed.
void run_batch(Model& model, const Tokenizer* tok, const std::string& model_name, const LensOptions& opts,
               bool add_special, const std::string& output, const BatchFlags& flags, const RuntimeInfo& runtime);

/// Single run with --store-logprobs: writes doc's log-probs next to `output` (OUTPUT.logprobs.safetensors)
/// and references the file from `j`.
void store_logprobs_sidecar(nlohmann::json& j, const RunDocument& doc, const std::string& output);

}  // namespace lens::cli
