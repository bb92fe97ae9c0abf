#include "lens/timing.h"

namespace lens {

void StageTimes::add(const std::string& stage, double seconds) {
  for (auto& s : stages_)
    if (s.first == stage) {
      s.second += seconds;
      return;
    }
  stages_.emplace_back(stage, seconds);
}

StageTimes& stage_times() {
  static StageTimes times;
  return times;
}

}  // namespace lens
