// The default thread count (lens/threads.h) over fake inputs: affinity counts, cgroup v1/v2 file trees
// written to a temporary directory, and environments. The real system is only read in the last test.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "lens/threads.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

ThreadInputs machine(int cores, std::optional<int> affinity = std::nullopt, std::optional<int> cgroup = std::nullopt) {
  ThreadInputs in;
  in.cores = cores;
  in.affinity = affinity;
  in.cgroup = cgroup;
  return in;
}

void expect_choice(const ThreadInputs& in, int threads, const std::string& from) {
  const ThreadChoice c = choose_threads(in);
  EXPECT_EQ(c.threads, threads);
  EXPECT_EQ(c.from, from);
}

TEST(Threads, CoresWhenNothingNarrower) {
  expect_choice(machine(8), 8, "cores");
  expect_choice(machine(8, 8), 8, "cores");      // a mask of all CPUs restricts nothing
  expect_choice(machine(8, 8, 8), 8, "cores");   // nor does a quota of all of them
  expect_choice(machine(8, 8, 16), 8, "cores");  // a quota above the cores
  expect_choice(machine(0), 1, "cores");         // never zero
}

TEST(Threads, SmallestOfAffinityCgroupSlurm) {
  expect_choice(machine(8, 1), 1, "affinity");  // taskset -c 0
  expect_choice(machine(8, 4, 2), 2, "cgroup");
  expect_choice(machine(8, 2, 4), 2, "affinity");
  ThreadInputs in = machine(8, 4, 3);
  in.env["SLURM_CPUS_PER_TASK"] = "2";
  expect_choice(in, 2, "slurm");
  in.env["SLURM_CPUS_PER_TASK"] = "6";
  expect_choice(in, 3, "cgroup");
  in = machine(2, 2);
  in.env["SLURM_CPUS_PER_TASK"] = "1";
  expect_choice(in, 1, "slurm");
  in = machine(8, 2, 2);  // ties go to the earlier source
  in.env["SLURM_CPUS_PER_TASK"] = "2";
  expect_choice(in, 2, "affinity");
}

TEST(Threads, EnvThenFlagOverride) {
  ThreadInputs in = machine(8, 1);
  in.env["OMP_NUM_THREADS"] = "3";  // the user may oversubscribe on purpose
  expect_choice(in, 3, "env");
  in.env["OMP_NUM_THREADS"] = "1";
  in.env["SLURM_CPUS_PER_TASK"] = "4";
  expect_choice(in, 1, "env");
  in.env["OMP_NUM_THREADS"] = " 2,1";  // nested list: the first level
  expect_choice(in, 2, "env");
  in.flag = 2;
  in.env["OMP_NUM_THREADS"] = "1";
  expect_choice(in, 2, "flag");
  in.flag = 5;
  expect_choice(in, 5, "flag");
}

TEST(Threads, InvalidEnvIgnored) {
  for (const char* bad : {"", "0", "-2", "two", "2x", "99999999999", ","}) {
    ThreadInputs in = machine(4, 3);
    in.env["OMP_NUM_THREADS"] = bad;
    in.env["SLURM_CPUS_PER_TASK"] = bad;
    SCOPED_TRACE(bad);
    expect_choice(in, 3, "affinity");
  }
}

// A fresh, empty temporary directory.
fs::path temp_dir() {
  static int counter = 0;
  const fs::path p = fs::temp_directory_path() /
                     ("lens_threads_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// A fake root whose sys/fs/cgroup holds the cgroup files a test writes.
struct FakeRoot {
  fs::path root = temp_dir();
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
  ~FakeRoot() { fs::remove_all(root); }
};

TEST(Threads, CgroupV2CpuMax) {
  FakeRoot f;
  f.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
  f.write("sys/fs/cgroup/job/cpu.max", "150000 100000\n");  // 1.5 CPUs -> 2
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/job\n"), 2);
  f.write("sys/fs/cgroup/job/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/job\n"), std::nullopt);
  f.write("sys/fs/cgroup/job/cpu.max", "50000 100000\n");  // half a CPU -> 1
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/job\n"), 1);
  // A parent's quota binds its children.
  f.write("sys/fs/cgroup/slice/cpu.max", "300000 100000\n");
  f.write("sys/fs/cgroup/slice/job/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/slice/job\n"), 3);
  f.write("sys/fs/cgroup/slice/job/cpu.max", "100000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/slice/job\n"), 1);
  // Inside a container the namespace root is "/": the mount's own cpu.max.
  f.write("sys/fs/cgroup/cpu.max", "200000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/\n"), 2);
  // A host path that is not under this mount: the mount's own cpu.max, not nothing.
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/system.slice/docker-abc.scope\n"), 2);
  // Garbage is no quota.
  f.write("sys/fs/cgroup/cpu.max", "lots\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, "0::/\n"), std::nullopt);
}

TEST(Threads, CgroupV1CfsQuota) {
  FakeRoot f;
  const std::string self = "12:pids:/x\n4:cpu,cpuacct:/docker/abc\n3:cpuset:/docker/abc\n0::/\n";
  f.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  f.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  f.write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
  f.write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, self), std::nullopt);
  f.write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");  // 2.5 -> 3
  EXPECT_EQ(cgroup_cpu_limit(f.root, self), 3);
  f.write("sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us", "100000\n");
  f.write("sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, self), 1);
  // The cpu controller mounted alone, at "cpu".
  FakeRoot g;
  g.write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "200000\n");
  g.write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(g.root, "1:cpu:/\n"), 2);
  // cpuacct alone is not the cpu controller; no cgroup files at all is no quota.
  EXPECT_EQ(cgroup_cpu_limit(g.root, "1:cpuacct:/\n"), std::nullopt);
  FakeRoot empty;
  EXPECT_EQ(cgroup_cpu_limit(empty.root, self), std::nullopt);
}

TEST(Threads, CgroupHybridTakesTheSmaller) {
  FakeRoot f;
  f.write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "400000\n");
  f.write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  f.write("sys/fs/cgroup/unified/cgroup.controllers", "\n");
  f.write("sys/fs/cgroup/unified/cpu.max", "200000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(f.root, "1:cpu:/\n0::/\n"), 2);
}

// Feeds the pieces together: a taskset-like mask and a v2 quota give the smaller.
TEST(Threads, CgroupIntoChoice) {
  FakeRoot f;
  f.write("sys/fs/cgroup/cgroup.controllers", "cpu\n");
  f.write("sys/fs/cgroup/cpu.max", "100000 100000\n");
  expect_choice(machine(4, 4, cgroup_cpu_limit(f.root, "0::/\n")), 1, "cgroup");
}

TEST(Threads, WaitPolicyOrigin) {
  WaitPolicy w = wait_policy_of({});
  EXPECT_EQ(w.setting, "");
  EXPECT_EQ(w.from, "libgomp");
  w = wait_policy_of({{kLensWaitVariable, kLensWaitValue}, {kLensWaitMarker, "1"}});
  EXPECT_EQ(w.setting, std::string(kLensWaitVariable) + "=" + kLensWaitValue);
  EXPECT_EQ(w.from, "lens");
  w = wait_policy_of({{kLensWaitVariable, kLensWaitValue}});  // the same value, set by the user
  EXPECT_EQ(w.from, "env");
  w = wait_policy_of({{"OMP_WAIT_POLICY", "ACTIVE"}, {"GOMP_SPINCOUNT", "1000"}, {kLensWaitMarker, "1"}});
  EXPECT_EQ(w.setting, "OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=1000");
  EXPECT_EQ(w.from, "env");
}

TEST(Threads, CurrentProcessIsSane) {
  const ThreadInputs in = current_thread_inputs(0);
  ASSERT_GE(in.cores, 1);
  if (in.affinity) {
    EXPECT_LE(*in.affinity, in.cores);
  }
  const ThreadChoice c = choose_threads(in);
  std::printf("this process: cores %d, affinity %d, cgroup %d -> %d threads (%s)\n", in.cores,
              in.affinity.value_or(-1), in.cgroup.value_or(-1), c.threads, c.from.c_str());
  EXPECT_GE(c.threads, 1);
  EXPECT_EQ(choose_threads(current_thread_inputs(3)).threads, 3);
}

}  // namespace
}  // namespace lens
