// cpu_lacks_native_bf16 (lens/cpu.h) against the flags the Linux kernel reports in /proc/cpuinfo,
// which it derives from CPUID on its own: both must agree on whether avx512_bf16 or amx_bf16 is there.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "lens/cpu.h"

namespace lens {
namespace {

TEST(Cpu, NativeBf16AgreesWithProcCpuinfo) {
#if !(defined(__x86_64__) || defined(__i386__))
  GTEST_SKIP() << "x86 only";
#endif
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line, flags;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) {
      flags = line.substr(line.find(':') + 1) + " ";
      break;
    }
  ASSERT_FALSE(flags.empty()) << "no flags line in /proc/cpuinfo";
  const bool has = flags.find(" avx512_bf16 ") != std::string::npos || flags.find(" amx_bf16 ") != std::string::npos;
  std::printf("/proc/cpuinfo: avx512_bf16 or amx_bf16 %s; cpu_lacks_native_bf16() = %d\n", has ? "present" : "absent",
              cpu_lacks_native_bf16());
  EXPECT_EQ(cpu_lacks_native_bf16(), !has);
}

}  // namespace
}  // namespace lens
