// Entry point of the `lens` tool: registers the subcommands, parses, and maps every error to one
// "error: ..." line on stderr and a documented exit code (README.md "Exit codes").
#include <sys/ioctl.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "lens/allocator.h"
#include "lens/cpu.h"
#include "lens/error.h"
#include "lens/hub.h"
#include "lens/threads.h"
#include "lens/timing.h"

namespace lens::cli {

namespace {
bool g_quiet = false;
}

void set_quiet(bool quiet) { g_quiet = quiet; }
bool is_quiet() { return g_quiet; }
void log(const std::string& line) {
  if (!g_quiet) std::cerr << line << std::endl;
}

void log_timing() {
  std::string line = "timing:";
  for (const auto& [stage, seconds] : stage_times().stages()) line += fmt::format(" {} {:.3f} s,", stage, seconds);
  line.pop_back();
  log(line);
}

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size()) throw UsageError(flag + ": '" + item + "' is not an integer");
    out.push_back(v);
  }
  if (out.empty()) throw UsageError(flag + ": empty list");
  return out;
}

LoadedModel load_model(const std::string& spec, const std::string& dtype, const std::string& device, bool strict) {
  LoadedModel m;
  m.resolved = resolve_or_download(spec, hub_options_from_env(g_quiet));
  LoadOptions lo;
  lo.dtype = dtype;
  lo.device = device;
  lo.strict = strict;
  m.model = Model::load(m.resolved.path, lo);
  const auto& ignored = m.model->config().ignored_keys;
  if (!ignored.empty()) {
    std::string keys;
    for (const auto& k : ignored) keys += (keys.empty() ? "" : ", ") + k;
    // Not a log line: shown even with -q, since it says the numbers may not be the model's.
    std::cerr << "warning: " << (m.resolved.path / "config.json").string() << ": keys lens does not know, ignored: "
              << keys << " (check they do not change the forward pass; --strict refuses them)" << std::endl;
  }
  m.tok = load_tokenizer(m.resolved.path);
  if (m.model->dtype() == at::kBFloat16 && m.model->device().is_cpu() && cpu_lacks_native_bf16())
    log("note: this CPU has no bfloat16 arithmetic (AVX512_BF16 or AMX), so bfloat16 matmuls are emulated and "
        "run ~4x slower than float32; --dtype float32 is faster where twice the weight bytes fit in memory");
  return m;
}

void add_runtime_flags(CLI::App* cmd, int& threads, std::string& dtype, std::string& device, bool& quiet) {
  cmd->add_option("-t,--threads", threads,
                  "CPU threads (default: OMP_NUM_THREADS, else the CPUs this process may use: affinity mask, "
                  "cgroup quota, SLURM_CPUS_PER_TASK)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--dtype", dtype, "Weight dtype")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "float16"}))
      ->capture_default_str();
  cmd->add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  cmd->add_flag("-q,--quiet", quiet, "No log lines on stderr");
}

void add_strict_flag(CLI::App* cmd, bool& strict) {
  cmd->add_flag("--strict", strict, "Refuse config.json keys lens does not know (default: warn and record them)");
}

RuntimeInfo set_threads(int flag) {
  const ThreadChoice c = choose_threads(current_thread_inputs(flag));
  at::set_num_threads(c.threads);  // also libgomp's team size, which OpenBLAS and oneDNN follow
  const WaitPolicy w = current_wait_policy();
  return RuntimeInfo{at::get_num_threads(), c.from, w.setting, w.from};  // what libtorch took, not what we asked
}

void log_runtime(const RuntimeInfo& r) {
  log(fmt::format("runtime: {} thread{} ({}), {} ({})", r.threads, r.threads == 1 ? "" : "s", r.threads_from,
                  r.omp_wait.empty() ? "libgomp's default wait policy" : r.omp_wait, r.omp_wait_from));
}

int terminal_width() {
  if (const char* c = std::getenv("COLUMNS")) {
    int w = std::atoi(c);
    if (w > 20) return w;
  }
  struct winsize ws {};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 120;
}

}  // namespace lens::cli

namespace {

int run_cli(int argc, char** argv) {
  CLI::App app{"lens: see what a language model believes at every layer (logit lens, tuned lens, attention)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lens 0.1.0");
  lens::cli::setup_run(app);
  lens::cli::setup_models(app);
  lens::cli::setup_tokenize(app);
  lens::cli::setup_view(app);
  lens::cli::setup_train(app);
  lens::cli::setup_eval(app);
  lens::cli::setup_merge(app);
  lens::cli::setup_check(app);
  lens::cli::setup_download(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << " (see 'lens --help')" << std::endl;
    return static_cast<int>(lens::ExitCode::kUsage);
  } catch (const lens::Error& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return static_cast<int>(e.code());
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << std::endl;
    return static_cast<int>(lens::ExitCode::kInternal);
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory" << std::endl;
    return static_cast<int>(lens::ExitCode::kInternal);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return static_cast<int>(lens::ExitCode::kInternal);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  lens::tune_allocator();
  const int rc = run_cli(argc, argv);
#ifdef LENS_SANITIZE
  return rc;  // let LeakSanitizer and the exit-time checks run
#else
  // Every output file is complete and closed by now (each command writes through a scoped
  // stream and renames into place). What is left is libtorch's exit-time work: deregistering
  // thousands of operators from the dispatcher, ~0.15 s of every run on a 2-core machine
  // (perf: Dispatcher::deregisterImpl_ under __cxa_finalize). Flush and leave without it.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(rc);
#endif
}
