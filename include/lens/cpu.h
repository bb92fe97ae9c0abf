// What the CPU offers that changes which dtype is fast.
#pragma once

namespace lens {

/// True on an x86-64 CPU without bfloat16 arithmetic (neither AVX512_BF16 nor AMX-BF16, by CPUID).
/// libtorch then emulates bfloat16 matmuls: measured on a 2-core Ice Lake Xeon, a 2048 x 2048
/// torch.mm ran at 58 GFLOP/s in bfloat16 against 215 in float32. False where it cannot tell.
bool cpu_lacks_native_bf16();

}  // namespace lens
