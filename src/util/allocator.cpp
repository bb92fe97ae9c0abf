#include "lens/allocator.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace lens {

void tune_allocator() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);   // also turns off glibc's own adjustment of both thresholds
  mallopt(M_TRIM_THRESHOLD, 256 << 20);  // keep up to 256 MiB free at the top of the heap
#endif
}

void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace lens
