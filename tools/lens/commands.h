// Subcommands of the `lens` tool: each file tools/lens/cmd_<name>.cpp registers one with
// setup_<name>(app) and does nothing but parse flags and call the library.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lens/model.h"
#include "lens/output.h"
#include "lens/registry.h"
#include "lens/tokenizer.h"

namespace lens::cli {

void setup_run(CLI::App& app);
void setup_models(CLI::App& app);
void setup_tokenize(CLI::App& app);
void setup_view(CLI::App& app);

/// Writes the `lens view` page (and optionally an SVG) for a run document whose attention, if
/// any, lives next to `base_dir`.
void write_view_files(const nlohmann::json& doc, const std::filesystem::path& base_dir, const std::string& html,
                      const std::string& svg);
void setup_train(CLI::App& app);
void setup_eval(CLI::App& app);
void setup_merge(CLI::App& app);
void setup_check(CLI::App& app);  // `lens diff` and `lens check`
void setup_download(CLI::App& app);

/// A model resolved and loaded for a subcommand, with its tokenizer (null when it has none).
struct LoadedModel {
  ResolvedModel resolved;
  std::shared_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
};

/// Resolves `spec` (path, alias, repo id[@revision]; a repo id not cached is downloaded from the Hub), loads the model with `dtype` / `device`, and its tokenizer.
LoadedModel load_model(const std::string& spec, const std::string& dtype, const std::string& device,
                       bool strict = false);
/// --strict: refuse config.json keys lens does not know instead of warning about them.
void add_strict_flag(CLI::App* cmd, bool& strict);

/// The flags every model-running subcommand shares: -t/--threads, --dtype, --device, -q/--quiet.
void add_runtime_flags(CLI::App* cmd, int& threads, std::string& dtype, std::string& device, bool& quiet);

/// Parses "1,2,3" into integers; throws UsageError naming `flag` on anything else.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag);

/// Sets libtorch's intra-op threads: `flag` (--threads) when > 0, else OMP_NUM_THREADS, else the CPUs this
/// process may use (lens/threads.h). Returns the count, its source and libgomp's wait setting.
RuntimeInfo set_threads(int flag);

/// "runtime: 2 threads (cores), OMP_WAIT_POLICY=PASSIVE (lens)" on stderr (with --timing).
void log_runtime(const RuntimeInfo& r);

/// Terminal width for tables (COLUMNS, the tty, or 120).
int terminal_width();

/// Logs a line on stderr unless --quiet.
void log(const std::string& line);
void set_quiet(bool quiet);
/// "timing: load 0.020 s, forward 0.110 s, ..." (the process-wide stage times) on stderr.
void log_timing();
bool is_quiet();

}  // namespace lens::cli
