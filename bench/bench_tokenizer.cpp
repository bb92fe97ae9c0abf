// Benchmark of the byte-level BPE tokenizer: encodes the shared text corpora line by line (single thread) and
// prints MB/s, tokens/s and a checksum of all ids, to compare with bench/bench_tokenizer_ref.py (HF
// tokenizers), which prints the same fields for the same lines. Not a test; needs the files under
// LENS_SHARED_DIR.
//
// Usage: bench_tokenizer [--model DIR] [--runs N] [FILE...]   (defaults: <shared>/models/gpt2-tokenizer, 3
// runs,
//        the corpus files listed below)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "lens/error.h"

namespace fs = std::filesystem;

namespace {

fs::path shared_dir() {
  if (const char* env = std::getenv("LENS_SHARED_DIR")) return env;
#ifdef LENS_SHARED_DIR
  return LENS_SHARED_DIR;
#else
  return "../shared";
#endif
}

// The same list as bench_tokenizer_ref.py.
const char* const kCorpus[] = {
    "corpus/tinyshakespeare/input.txt",    "corpus/tinystories/tinystories_train_first2MiB.complete.txt",
    "corpus/wikitext-2/valid.txt",         "corpus/wikitext-2/test.txt",
    "corpus/wikitext-2-raw/wiki.test.raw",
};

}  // namespace

int main(int argc, char** argv) {
  fs::path model = shared_dir() / "models" / "gpt2-tokenizer";
  int runs = 3;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) {
      model = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      files.emplace_back(a);
    }
  }
  if (files.empty()) {
    for (const char* f : kCorpus) files.push_back(shared_dir() / f);
  }
  try {
    std::string text;
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      if (!in) throw lens::InputError(f.string() + ": cannot open");
      std::ostringstream ss;
      ss << in.rdbuf();
      text += ss.str();
    }
    // Lines split on '\n', each keeping its '\n' (as the Python reference does).
    std::vector<std::string> lines;
    for (size_t pos = 0; pos < text.size();) {
      const size_t nl = text.find('\n', pos);
      const size_t end = nl == std::string::npos ? text.size() : nl + 1;
      lines.push_back(text.substr(pos, end - pos));
      pos = end;
    }
    const auto t_load = std::chrono::steady_clock::now();
    auto tok = lens::load_bpe_tokenizer(model);
    if (!tok) throw lens::ModelError(model.string() + ": no byte-level BPE tokenizer");
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
    std::fprintf(stderr, "model %s (load %.3f s), %zu files, %.2f MB, %zu lines\n", model.string().c_str(),
                 load_s, files.size(), text.size() / 1e6, lines.size());

    std::vector<double> seconds;
    size_t n_tokens = 0;
    uint64_t checksum = 0;
    for (int r = 0; r < runs; ++r) {
      n_tokens = 0;
      checksum = 1469598103934665603ull;  // FNV-1a over all ids, in order
      const auto t0 = std::chrono::steady_clock::now();
      for (const std::string& line : lines) {
        const auto ids = tok->encode(line, false);
        n_tokens += ids.size();
        for (int64_t id : ids) checksum = (checksum ^ static_cast<uint64_t>(id)) * 1099511628211ull;
      }
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fprintf(stderr, "run %d: %.3f s%s\n", r + 1, seconds.back(), r == 0 ? " (cold word cache)" : "");
    }
    std::vector<double> sorted = seconds;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    std::printf(
        "lens C++   : %.2f MB, %zu tokens, median of %d runs %.3f s: %.2f MB/s, %.0f tokens/s "
        "(first run %.3f s); checksum %016llx\n",
        text.size() / 1e6, n_tokens, runs, median, text.size() / 1e6 / median, n_tokens / median,
        seconds.front(), static_cast<unsigned long long>(checksum));
  } catch (const lens::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
  return 0;
}
