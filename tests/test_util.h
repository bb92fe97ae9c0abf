// Helpers shared by the test tiers: fixture and shared-asset paths, JSON to tensor, diffs.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace lens::test {

inline std::filesystem::path source_dir() { return LENS_SOURCE_DIR; }
inline std::filesystem::path fixtures_dir() { return source_dir() / "tests" / "fixtures"; }
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("LENS_SHARED_DIR")) return env;
  return LENS_SHARED_DIR;
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  return nlohmann::json::parse(in);
}

/// Nested JSON arrays of numbers -> float64 tensor of the same shape.
inline at::Tensor json_tensor(const nlohmann::json& j) {
  std::vector<int64_t> shape;
  const nlohmann::json* cur = &j;
  while (cur->is_array()) {
    shape.push_back(static_cast<int64_t>(cur->size()));
    if (cur->empty()) break;
    cur = &(*cur)[0];
  }
  std::vector<double> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& x) {
    if (x.is_array()) {
      for (const auto& e : x) walk(e);
    } else {
      flat.push_back(x.get<double>());
    }
  };
  walk(j);
  return at::tensor(flat, at::kDouble).view(shape);
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace lens::test

/// Skips the current test when a ../shared asset is missing (CI always has it).
#define LENS_REQUIRE_SHARED(path)                                                        \
  do {                                                                                   \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared asset missing: " << (path); \
  } while (0)
