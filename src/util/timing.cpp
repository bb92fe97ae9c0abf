#include "lens/timing.h"

namespace lens {

void StageTimes::add(const std::string& stage, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& s : stages_)
    if (s.first == stage) {
      s.second += seconds;
      return;
    }
  stages_.emplace_back(stage, seconds);
}

std::vector<std::pair<std::string, double>> StageTimes::stages() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stages_;
}

StageTimes& stage_times() {
  static StageTimes times;
  return times;
}

}  // namespace lens
