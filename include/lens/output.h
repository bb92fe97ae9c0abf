// Output of lens results: JSON documents (schema in README.md, schema_version 1) through
// nlohmann to_json/from_json, and the human-readable terminal table.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lens/attention.h"
#include "lens/config.h"
#include "lens/lens.h"

namespace lens {

constexpr int kSchemaVersion = 1;

/// Display text of a token id (tokenizer's token_text, or "[id]" without a tokenizer).
using TokenNamer = std::function<std::string(int64_t)>;

struct TokenInfo {
  int64_t id = 0;
  std::string text;
};

struct ModelInfo {
  std::string name;
  std::string path;
  std::string architecture;
  int64_t n_layer = 0, d_model = 0, n_head = 0, vocab_size = 0;
  std::string dtype;
  std::vector<std::string> ignored_config_keys;  // config.json keys lens did not read (ModelConfig::ignored_keys)
};

/// How the run was executed: threads and where their number came from (lens/threads.h), and libgomp's
/// wait setting (WaitPolicy). Machine-dependent, unlike the rest of the document.
struct RuntimeInfo {
  int threads = 1;
  std::string threads_from;  // flag | env | slurm | cgroup | affinity | cores
  std::string omp_wait;      // e.g. "OMP_WAIT_POLICY=PASSIVE"; empty: libgomp's default
  std::string omp_wait_from;  // lens | env | libgomp
};

struct RunDocument {
  ModelInfo model;
  std::optional<std::string> prompt;
  std::vector<TokenInfo> tokens;
  std::vector<LensResult> lenses;  // one per lens ("logit", "tuned")
  std::optional<AttentionCapture> attention;  // with --attention
  std::optional<RuntimeInfo> runtime;  // set by the CLI
};

void to_json(nlohmann::json& j, const RuntimeInfo& v);
void to_json(nlohmann::json& j, const TokenProb& v);
void to_json(nlohmann::json& j, const TokenRank& v);
void to_json(nlohmann::json& j, const PositionStats& v);
void to_json(nlohmann::json& j, const LayerStats& v);
void from_json(const nlohmann::json& j, TokenProb& v);
void from_json(const nlohmann::json& j, TokenRank& v);
void from_json(const nlohmann::json& j, PositionStats& v);
void from_json(const nlohmann::json& j, LayerStats& v);

/// The document for one run. With one lens, its layers are top-level "layers"; with several,
/// "layers" holds the first and "lenses" maps each lens name to its layers.
/// `namer` fills in the "token" text of top-k entries and ranks.
nlohmann::json run_document_json(const RunDocument& doc, const TokenNamer& namer);

/// Serialises with invalid UTF-8 replaced (token pieces can be partial characters).
std::string dump_json(const nlohmann::json& j, int indent = -1);

/// Terminal table: layers down, positions across, top token and probability per cell.
/// `width` is the terminal width; positions that do not fit are left out with a note.
std::string lens_table(const RunDocument& doc, const LensResult& result, const TokenNamer& namer, int width);

}  // namespace lens
