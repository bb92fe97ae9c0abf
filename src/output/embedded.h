// A text file compiled into the binary (see cmake/embed.cmake, which generates the definitions).
// Only the declaration lives here; the generated .cpp defines one array per embedded file set.
#pragma once

#include <cstddef>

namespace lens {

/// One embedded file: its name (no directory) and its bytes (NUL-terminated, `size` excludes the NUL).
struct EmbeddedFile {
  const char* name;
  const char* data;
  std::size_t size;
};

/// The HTML/CSS/JS template of `lens view` (src/output/view/), generated at build time.
extern const EmbeddedFile kViewAssets[];
extern const std::size_t kViewAssets_count;

}  // namespace lens
