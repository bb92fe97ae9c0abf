// How many threads a run uses by default: the CPUs this process was actually given (affinity mask,
// cgroup quota, Slurm allocation), not the cores the machine has. The rule is one pure function over
// injectable inputs (choose_threads) so it is tested without taskset, cgroups or Slurm; the readers of
// the real system are kept apart (current_thread_inputs). Setting libtorch's thread count is the CLI's job.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace lens {

/// Everything that bounds the default thread count.
struct ThreadInputs {
  int cores = 1;                 // online CPUs of the machine
  std::optional<int> affinity;   // CPUs in the sched_getaffinity mask (none: could not be read)
  std::optional<int> cgroup;     // cgroup CPU quota, rounded up (none: no quota)
  std::map<std::string, std::string> env;  // only SLURM_CPUS_PER_TASK and OMP_NUM_THREADS are read
  int flag = 0;                  // --threads; 0 = not given
};

/// The thread count and what set it: "flag" (--threads), "env" (OMP_NUM_THREADS), or the smallest of
/// "affinity", "cgroup", "slurm" (SLURM_CPUS_PER_TASK) where it is below the machine's cores, else "cores".
struct ThreadChoice {
  int threads = 1;
  std::string from = "cores";
};

/// --threads wins, then OMP_NUM_THREADS (its first entry, as libgomp reads "4,2"), then the smallest of
/// the affinity mask, the cgroup quota and SLURM_CPUS_PER_TASK; ties go to the earlier of those three.
/// Values that are not positive integers are ignored, as libgomp ignores them. Always >= 1.
ThreadChoice choose_threads(const ThreadInputs& in);

/// CPUs allowed by the cgroup CPU quota of the process described by `self_cgroup` (the text of
/// /proc/self/cgroup), with the cgroup file systems under `root`/sys/fs/cgroup (root is "/" outside
/// tests). cgroup v2: cpu.max ("max 100000" or "150000 100000"); v1: cpu.cfs_quota_us / cpu.cfs_period_us
/// (-1: none). Quotas of every ancestor up to the mount count (the smallest wins); quota / period is
/// rounded up. When the named cgroup is not under the mount (a container without a cgroup namespace
/// shows the host's path), the mount's own directory is read. None when no quota applies.
std::optional<int> cgroup_cpu_limit(const std::filesystem::path& root, const std::string& self_cgroup);

/// libgomp's wait policy as lens sets it by default (tools/lens/launcher.cpp sets it before libgomp loads,
/// unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT), and the marker variable saying lens set it.
constexpr const char* kLensWaitVariable = "OMP_WAIT_POLICY";
constexpr const char* kLensWaitValue = "PASSIVE";
constexpr const char* kLensWaitMarker = "LENS_OMP_WAIT_SET";

/// The wait setting a process started with: `setting` is "OMP_WAIT_POLICY=..." and/or "GOMP_SPINCOUNT=..."
/// (space-separated; empty when neither is set), `from` is "lens" (the launcher's default), "env" (the
/// user's) or "libgomp" (neither set: libgomp's own default, which spins ~300,000 times before sleeping).
struct WaitPolicy {
  std::string setting;
  std::string from = "libgomp";
};

/// Pure: from the environment's OMP_WAIT_POLICY, GOMP_SPINCOUNT and kLensWaitMarker.
WaitPolicy wait_policy_of(const std::map<std::string, std::string>& env);

/// This process's (getenv).
WaitPolicy current_wait_policy();

/// This process's inputs: online CPUs, sched_getaffinity, /proc/self/cgroup and the cgroup files, the
/// environment; `flag` is --threads (0 = not given).
ThreadInputs current_thread_inputs(int flag);

}  // namespace lens
