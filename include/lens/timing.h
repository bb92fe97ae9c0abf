// Wall-clock seconds per named stage of a run ("load", "forward", "lens_logits", "lens_reduce",
// "json", "write"), accumulated process-wide. `lens run --timing` reports them; the benchmarks read
// them to separate compute from process start-up. Not thread-safe: stages are timed on the calling
// thread around work that may itself be parallel.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace lens {

class StageTimes {
 public:
  void add(const std::string& stage, double seconds);
  void clear() { stages_.clear(); }
  /// Stages in the order they were first timed, with their summed seconds.
  const std::vector<std::pair<std::string, double>>& stages() const { return stages_; }

 private:
  std::vector<std::pair<std::string, double>> stages_;
};

/// The process-wide accumulator.
StageTimes& stage_times();

/// Adds the time from construction to destruction to `stage`.
class ScopedStage {
 public:
  explicit ScopedStage(std::string stage) : stage_(std::move(stage)), t0_(std::chrono::steady_clock::now()) {}
  ~ScopedStage() {
    stage_times().add(stage_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }
  ScopedStage(const ScopedStage&) = delete;
  ScopedStage& operator=(const ScopedStage&) = delete;

 private:
  std::string stage_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace lens
