// The thread count and wait policy a real `lens run` reports in "runtime": under taskset, Slurm's and
// OpenMP's variables, --threads; and the launcher's OMP_WAIT_POLICY default, which the user's own setting
// replaces. runtime.threads is what libtorch was set to (at::get_num_threads() after setting it).
#include <sched.h>

#include <filesystem>

#include "cli_util.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

// Variables that would change the choice, cleared so the test sees only what it sets.
const std::string kClean =
    "env -u OMP_NUM_THREADS -u SLURM_CPUS_PER_TASK -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u LENS_OMP_WAIT_SET";

std::string tiny_gpt2() { return (test::fixtures_dir() / "tiny-gpt2").string(); }

// `prefix` goes before the clean env (e.g. taskset), `vars` after it.
nlohmann::json run_runtime(const std::string& prefix, const std::string& vars, const std::string& flags = "",
                           std::string* err = nullptr) {
  const test::CliResult r = test::run_cli("run --model " + tiny_gpt2() + " --token-ids 1,2,3 --json " + flags,
                                          prefix + (prefix.empty() ? "" : " ") + kClean + " " + vars);
  EXPECT_EQ(r.code, 0) << r.err;
  if (err) *err = r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j.contains("runtime")) << r.out;
  std::printf("%s %s %s -> %s\n", prefix.c_str(), vars.c_str(), flags.c_str(), j["runtime"].dump().c_str());
  return j["runtime"];
}

bool have_cpu0_and_more() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_ISSET(0, &set) && CPU_COUNT(&set) > 1;
}

TEST(CliThreads, TasksetOneCpuGivesOneThread) {
  if (!have_cpu0_and_more()) GTEST_SKIP() << "needs CPU 0 and at least one more in this process's mask";
  std::string err;
  const auto rt = run_runtime("taskset -c 0", "", "--timing", &err);
  EXPECT_EQ(rt["threads"], 1);
  EXPECT_EQ(rt["threads_from"], "affinity");
  EXPECT_NE(err.find("runtime: 1 thread (affinity)"), std::string::npos) << err;  // --timing prints it
}

TEST(CliThreads, SlurmAndOmpNumThreads) {
  if (!have_cpu0_and_more()) GTEST_SKIP() << "needs more than one CPU to tell a limit from the machine";
  auto rt = run_runtime("", "SLURM_CPUS_PER_TASK=1");
  EXPECT_EQ(rt["threads"], 1);
  EXPECT_EQ(rt["threads_from"], "slurm");
  rt = run_runtime("", "OMP_NUM_THREADS=1");
  EXPECT_EQ(rt["threads"], 1);
  EXPECT_EQ(rt["threads_from"], "env");
  rt = run_runtime("", "SLURM_CPUS_PER_TASK=1 OMP_NUM_THREADS=2");  // OMP_NUM_THREADS is stronger
  EXPECT_EQ(rt["threads"], 2);
  EXPECT_EQ(rt["threads_from"], "env");
}

TEST(CliThreads, FlagWinsOverEverything) {
  for (const std::string& prefix : {std::string(), std::string(have_cpu0_and_more() ? "taskset -c 0" : "")}) {
    auto rt = run_runtime(prefix, "SLURM_CPUS_PER_TASK=1 OMP_NUM_THREADS=1", "--threads 2");
    EXPECT_EQ(rt["threads"], 2);
    EXPECT_EQ(rt["threads_from"], "flag");
  }
}

TEST(CliThreads, DefaultIsTheCpusOfThisProcess) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const auto rt = run_runtime("", "");
  // No cgroup quota or Slurm in the test environment is assumed; if there is one, it can only lower this.
  EXPECT_LE(rt["threads"].get<int>(), CPU_COUNT(&set));
  EXPECT_GE(rt["threads"].get<int>(), 1);
}

TEST(CliThreads, LauncherSetsPassiveWaitUnlessTheUserChose) {
  auto rt = run_runtime("", "");
  EXPECT_EQ(rt["omp_wait"], "OMP_WAIT_POLICY=PASSIVE");
  EXPECT_EQ(rt["omp_wait_from"], "lens");
  rt = run_runtime("", "OMP_WAIT_POLICY=ACTIVE");
  EXPECT_EQ(rt["omp_wait"], "OMP_WAIT_POLICY=ACTIVE");
  EXPECT_EQ(rt["omp_wait_from"], "env");
  rt = run_runtime("", "GOMP_SPINCOUNT=1000");
  EXPECT_EQ(rt["omp_wait"], "GOMP_SPINCOUNT=1000");
  EXPECT_EQ(rt["omp_wait_from"], "env");
}

TEST(CliThreads, LensBinAloneKeepsLibgompDefault) {
  const fs::path bin = fs::path(LENS_BINARY).parent_path() / "lens-bin";
  ASSERT_TRUE(fs::exists(bin)) << bin;
  const std::string cmd = kClean + " " + bin.string() + " run --model " + tiny_gpt2() + " --token-ids 1,2,3 --json";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0);
  const auto rt = nlohmann::json::parse(out)["runtime"];
  EXPECT_EQ(rt["omp_wait"], "");
  EXPECT_EQ(rt["omp_wait_from"], "libgomp");
}

// The launcher passes stdin, argv (with spaces and empty strings) and the exit code through.
TEST(CliThreads, LauncherPassesStdinArgvAndExitCode) {
  const fs::path dir = test::temp_dir("launcher");
  const test::CliResult ok = test::run_cli("run --model " + tiny_gpt2() + " --prompts /dev/stdin -q",
                                           "printf '{\"token_ids\": [1, 2]}\\n' |");
  ASSERT_EQ(ok.code, 0) << ok.err;
  const auto rec = nlohmann::json::parse(ok.out);
  ASSERT_EQ(rec["tokens"].size(), 2u);
  EXPECT_EQ(rec["tokens"][1]["id"], 2);
  const test::CliResult bad = test::run_cli("run --model " + tiny_gpt2() + " --token-ids '' --json");
  EXPECT_EQ(bad.code, 2) << bad.err;
  const test::CliResult missing = test::run_cli("run --model '" + (dir / "no such model").string() + "' --token-ids 1");
  EXPECT_EQ(missing.code, 4) << missing.err;
  EXPECT_NE(missing.err.find("no such model"), std::string::npos) << missing.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lens
