// The default thread count from the process's CPU allocation (see lens/threads.h). Reads files and the
// environment only in current_thread_inputs and cgroup_cpu_limit; choose_threads is pure.
#include "lens/threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace lens {

namespace fs = std::filesystem;

namespace {

// A positive decimal integer, surrounding blanks allowed; anything else is none.
std::optional<int> positive_int(const std::string& text) {
  const size_t b = text.find_first_not_of(" \t\n");
  if (b == std::string::npos) return std::nullopt;
  const size_t e = text.find_last_not_of(" \t\n") + 1;
  const std::string s = text.substr(b, e - b);
  if (s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int v = std::atoi(s.c_str());
  if (v <= 0) return std::nullopt;
  return v;
}

std::optional<int> env_int(const ThreadInputs& in, const std::string& name, bool first_of_list) {
  const auto it = in.env.find(name);
  if (it == in.env.end()) return std::nullopt;
  return positive_int(first_of_list ? it->second.substr(0, it->second.find(',')) : it->second);
}

std::optional<std::string> read_small_file(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ceil(quota / period) for a positive quota and period, else none.
std::optional<int> cpus_of_quota(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return static_cast<int>(std::max(1LL, (quota + period - 1) / period));
}

// cgroup v2 cpu.max: "<quota|max> <period>".
std::optional<int> read_cpu_max(const fs::path& dir) {
  const auto text = read_small_file(dir / "cpu.max");
  if (!text) return std::nullopt;
  std::istringstream ss(*text);
  std::string quota;
  long long period = 0;
  if (!(ss >> quota >> period) || quota == "max") return std::nullopt;
  try {
    return cpus_of_quota(std::stoll(quota), period);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// cgroup v1: cpu.cfs_quota_us (-1 = none) over cpu.cfs_period_us.
std::optional<int> read_cfs_quota(const fs::path& dir) {
  const auto quota = read_small_file(dir / "cpu.cfs_quota_us");
  const auto period = read_small_file(dir / "cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  try {
    return cpus_of_quota(std::stoll(*quota), std::stoll(*period));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<int> smaller(std::optional<int> a, std::optional<int> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// The smallest quota on the way from the cgroup `path` (as /proc/self/cgroup names it) up to `mount`.
std::optional<int> limit_up_to_mount(const fs::path& mount_dir, const std::string& path,
                                     std::optional<int> (*read)(const fs::path&)) {
  std::error_code ec;
  const fs::path mount = mount_dir.lexically_normal();
  if (!fs::is_directory(mount, ec)) return std::nullopt;
  const fs::path rel = fs::path(path).relative_path().lexically_normal();
  fs::path dir = rel.empty() || rel == "." || *rel.begin() == ".." ? mount : mount / rel;
  if (!fs::is_directory(dir, ec)) dir = mount;
  std::optional<int> best;
  for (fs::path d = dir;; d = d.parent_path()) {
    best = smaller(best, read(d));
    if (d == mount || d == d.parent_path()) break;
  }
  return best;
}

}  // namespace

ThreadChoice choose_threads(const ThreadInputs& in) {
  ThreadChoice c{std::max(1, in.cores), "cores"};
  const auto lower = [&c](std::optional<int> n, const char* from) {
    if (n && *n >= 1 && *n < c.threads) c = {*n, from};
  };
  lower(in.affinity, "affinity");
  lower(in.cgroup, "cgroup");
  lower(env_int(in, "SLURM_CPUS_PER_TASK", false), "slurm");
  if (const auto n = env_int(in, "OMP_NUM_THREADS", true)) c = {*n, "env"};
  if (in.flag > 0) c = {in.flag, "flag"};
  return c;
}

std::optional<int> cgroup_cpu_limit(const fs::path& root, const std::string& self_cgroup) {
  const fs::path base = root / "sys/fs/cgroup";
  std::optional<int> best;
  std::istringstream lines(self_cgroup);
  std::string line;
  while (std::getline(lines, line)) {
    // "hierarchy-id:controller,list:/path"; v2 is "0::/path".
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (id == "0" && controllers.empty()) {
      // Unified hierarchy: /sys/fs/cgroup itself, or /sys/fs/cgroup/unified on hybrid systems.
      for (const fs::path& mount : {base, base / "unified"}) {
        std::error_code ec;
        if (fs::exists(mount / "cgroup.controllers", ec))
          best = smaller(best, limit_up_to_mount(mount, path, read_cpu_max));
      }
      continue;
    }
    std::vector<std::string> names;
    std::istringstream cs(controllers);
    for (std::string c; std::getline(cs, c, ',');) names.push_back(c);
    if (std::find(names.begin(), names.end(), "cpu") == names.end()) continue;
    // v1 mounts the cpu controller as cpu,cpuacct (with cpu and cpuacct as links to it) or as cpu alone.
    for (const std::string& dir : {controllers, std::string("cpu")}) {
      best = smaller(best, limit_up_to_mount(base / dir, path, read_cfs_quota));
      if (fs::exists(base / dir)) break;
    }
  }
  return best;
}

WaitPolicy wait_policy_of(const std::map<std::string, std::string>& env) {
  WaitPolicy w;
  for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}) {
    const auto it = env.find(name);
    if (it == env.end()) continue;
    w.setting += (w.setting.empty() ? "" : " ") + std::string(name) + "=" + it->second;
    w.from = "env";
  }
  const auto own = env.find(kLensWaitVariable);
  if (env.count(kLensWaitMarker) && own != env.end() && own->second == kLensWaitValue) w.from = "lens";
  return w;
}

WaitPolicy current_wait_policy() {
  std::map<std::string, std::string> env;
  for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", kLensWaitMarker})
    if (const char* v = std::getenv(name)) env[name] = v;
  return wait_policy_of(env);
}

ThreadInputs current_thread_inputs(int flag) {
  ThreadInputs in;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  in.cores = online > 0 ? static_cast<int>(online) : 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) in.affinity = CPU_COUNT(&set);
  if (const auto self = read_small_file("/proc/self/cgroup")) in.cgroup = cgroup_cpu_limit("/", *self);
  for (const char* name : {"SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"})
    if (const char* v = std::getenv(name)) in.env[name] = v;
  in.flag = flag;
  return in;
}

}  // namespace lens
