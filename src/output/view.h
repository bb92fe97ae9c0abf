// Offline browser views of a `lens run` result (`lens view`) and a static SVG heat map for reports.
// The page is one self-contained HTML file (no network, no frameworks); attention patterns too large to
// inline go to sibling files `<stem>_files/attn_<layer>.js`, loaded lazily by the page. Page format:
// docs/view.md. Deliberately no libtorch here: callers copy captured tensors into ViewAttention.
#pragma once

#include <cstddef>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

namespace lens {

/// Attention captured for the views. Dimension order everywhere: (query, key) for patterns, (T, d_head)
/// for queries and keys. Index of a (layer, head) slot: layer_idx * n_head + head, where layer_idx is the
/// position of the block index in `layers`.
struct ViewAttention {
  int n_layer = 0;          // blocks in the model
  int n_head = 0;           // query heads per block
  int seq_len = 0;          // T
  int d_head = 0;           // only needed when queries/keys are given
  std::vector<int> layers;  // captured block indices (blocks.{l}.attn.hook_pattern), ascending
  std::vector<std::vector<float>> patterns;  // [layers.size() * n_head] of (T, T), rows sum to 1
  // Optional, both or neither: [layers.size() * n_head] of (T, d_head). Keys per *query* head (a GQA
  // caller repeats each kv head), after RoPE when the model uses it, so q.k / sqrt(d_head) is the score.
  std::vector<std::vector<float>> queries;
  std::vector<std::vector<float>> keys;
};

/// Full patterns (uint8, lower triangle) up to this many bytes in total are inlined in the page;
/// larger ones go to `<stem>_files/attn_<layer>.js`, one file per captured layer.
constexpr std::size_t kViewInlineBytes = 8u << 20;

/// Writes the HTML page for `run_doc` (a `lens run` JSON document, docs/run-json.md) to `out_html`,
/// plus `<stem>_files/` next to it when the attention is large. `attn` may be null (no attention views
/// except the sink table, which comes from run_doc["attention"]["sinks"]). Writes to temporary files and
/// renames, so a failure never leaves a half-written page. Throws lens::Error on I/O failure and
/// lens::InputError when `attn` is inconsistent (sizes do not match n_head / seq_len / d_head).
void write_view(const nlohmann::json& run_doc, const ViewAttention* attn,
                const std::filesystem::path& out_html);

/// Writes a static SVG heat map of the logit-lens table of `run_doc`: layers (rows) x positions (columns),
/// the top-1 token in each cell, coloured by its probability. Same temp-file-then-rename rule.
void write_lens_svg(const nlohmann::json& run_doc, const std::filesystem::path& out_svg);

}  // namespace lens
