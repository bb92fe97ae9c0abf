// Wall-clock seconds per named stage of a run ("load", "forward", "lens_logits", "lens_reduce",
// "json", "write"), accumulated process-wide. `lens run --timing` reports them; the benchmarks read
// them to separate compute from process start-up. Stages timed on several threads at once (training
// workers) add up their threads' times.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lens {

class StageTimes {
 public:
  void add(const std::string& stage, double seconds);
  /// Stages in the order they were first timed, with their summed seconds.
  std::vector<std::pair<std::string, double>> stages() const;

 private:
  mutable std::mutex mutex_;
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
