// Cost of one OpenMP parallel region (fork, a small loop, join barrier) under the wait policy in the
// environment: what each of lens's parallel regions pays in synchronisation. Not a test; see bench/README.md.
// Usage: OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 build/bin/bench_omp_regions [REGIONS] [GAP_US]
// GAP_US is serial work between regions (as the serial code between lens's parallel kernels).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int gap_us = argc > 2 ? std::atoi(argv[2]) : 0;
  std::vector<double> v(1 << 12, 1.0);  // 32 KiB: the loop itself takes a few microseconds
  double sink = 0;
  const auto serial = [&sink](int us) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() < us) sink += 1e-9;
  };
  const auto run = [&](int regions) {
    for (int i = 0; i < regions; ++i) {
#pragma omp parallel for
      for (int j = 0; j < static_cast<int>(v.size()); ++j) v[j] = v[j] * 1.0000001 + 1e-9;
      if (gap_us > 0) serial(gap_us);
    }
  };
  run(200);  // start the thread pool
  const auto t0 = std::chrono::steady_clock::now();
  run(n);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  std::printf("%d threads, OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s, %d regions, gap %d us: %.2f us per region\n",
              omp_get_max_threads(), policy ? policy : "-", spin ? spin : "-", n, gap_us, 1e6 * s / n);
  return sink > 1e300;  // keep the serial loop
}
