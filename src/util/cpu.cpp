// CPUID checks (see lens/cpu.h).
#include "lens/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace lens {

bool cpu_lacks_native_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return true;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned max_subleaf = a;
  const bool amx_bf16 = (d >> 22) & 1u;  // leaf 7.0 EDX bit 22
  bool avx512_bf16 = false;
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    avx512_bf16 = (a >> 5) & 1u;  // leaf 7.1 EAX bit 5
  }
  return !amx_bf16 && !avx512_bf16;
#else
  return false;
#endif
}

}  // namespace lens
