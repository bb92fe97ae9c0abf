// Attention capture (blocks.{l}.attn.hook_pattern, optionally hook_q / hook_k) for chosen layers and
// heads, the attention-sink report, and export: inline JSON for small captures, a float16
// safetensors sidecar referenced from the JSON for large ones. Batch size 1 only.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lens/config.h"
#include "lens/hooks.h"

namespace lens {

struct AttentionOptions {
  std::string layers = "all";  // index spec over blocks 0..n_layer-1
  std::string heads = "all";   // index spec over heads 0..n_head-1
  bool qk = false;             // also keep queries and keys (after RoPE, keys repeated per query head)
  double sink_threshold = 0.5;  // a head is a sink when its mean attention on token 0 reaches this
};

struct HeadSink {
  int64_t layer = 0;
  int64_t head = 0;
  double bos_mass = 0;   // mean over queries 1..T-1 of the weight on token 0
  double prev_mass = 0;  // mean over queries 1..T-1 of the weight on the previous token
  double entropy = 0;    // mean over queries of the row entropy, nats
  bool sink = false;
};

struct AttentionCapture {
  int64_t n_layer = 0, n_head = 0, seq_len = 0, d_head = 0;
  std::vector<int64_t> layers;     // captured blocks
  std::vector<int64_t> heads;      // captured heads
  std::vector<at::Tensor> patterns;  // per captured layer: (heads, T, T) float16
  std::vector<at::Tensor> queries;   // per captured layer: (heads, T, d_head) float16, when qk
  std::vector<at::Tensor> keys;
  std::vector<HeadSink> sinks;       // every captured (layer, head)
  double sink_threshold = 0.5;
};

/// Registers callbacks on `hooks` that fill a capture during Model::forward (batch size 1).
class AttentionRecorder {
 public:
  AttentionRecorder(const ModelConfig& cfg, const AttentionOptions& opts, Hooks& hooks);
  /// The capture of the last forward pass, with the sink report computed.
  AttentionCapture take();

 private:
  AttentionOptions opts_;
  AttentionCapture cap_;
  std::map<int64_t, at::Tensor> pat_, q_, k_;
};

/// Sink statistics of one layer's pattern (heads, T, T).
std::vector<HeadSink> attention_sinks(int64_t layer, const std::vector<int64_t>& heads, const at::Tensor& pattern,
                                      double threshold);

/// The "attention" section of a run document. When `sidecar` is non-empty the tensors are written
/// there (float16 safetensors: blocks.{l}.attn.hook_pattern etc.) and referenced by file name;
/// otherwise patterns (and q/k) are inlined as nested arrays [layer][head][q][k].
nlohmann::json attention_json(const AttentionCapture& cap, const std::filesystem::path& sidecar);

/// Reads a capture back from a run document's "attention" section (inline or sidecar; a relative
/// sidecar path is resolved against `base_dir`). Throws InputError when it is missing or broken.
AttentionCapture read_attention(const nlohmann::json& attention, const std::filesystem::path& base_dir);

}  // namespace lens
