// `lens`: a launcher, linked to nothing but libc, that sets libgomp's wait policy and then execs the real
// program, `lens-bin` next to it. libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when it is loaded,
// before main, and OpenBLAS and oneDNN run on that same libgomp; setting them inside lens-bin would take a
// re-exec that pays libtorch's start-up (~0.45 s) twice. The launcher parses nothing: argv, the standard
// streams and the exit status are lens-bin's own (exec replaces this process). README "Usage", --threads.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lens/threads.h"

int main(int, char** argv) {
  // The user's own setting wins. kLensWaitMarker tells lens-bin (and its "runtime" JSON) who chose.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    setenv(lens::kLensWaitVariable, lens::kLensWaitValue, 1);
    setenv(lens::kLensWaitMarker, "1", 1);
  }
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    std::fprintf(stderr, "error: lens launcher: cannot read /proc/self/exe: %s\n", std::strerror(errno));
    return 5;
  }
  self[n] = '\0';
  std::string target(self);
  target = target.substr(0, target.rfind('/') + 1) + "lens-bin";
  // Never exec ourselves (a lens-bin that is a copy or link of this launcher would loop forever).
  struct stat a {}, b {};
  if (stat(self, &a) == 0 && stat(target.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
    std::fprintf(stderr, "error: lens launcher: %s is the launcher itself\n", target.c_str());
    return 5;
  }
  execv(target.c_str(), argv);
  std::fprintf(stderr, "error: lens launcher: cannot run %s: %s\n", target.c_str(), std::strerror(errno));
  return 5;
}
