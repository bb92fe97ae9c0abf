// `lens merge OUT.jsonl SHARD...`: joins the outputs of `lens run --prompts --shard K/N` back into
// input order, refusing duplicates, gaps and incomplete shards. Log-prob sidecar references are
// rewritten relative to OUT's directory. It schedules nothing: the shards ran wherever they ran.
#include <filesystem>
#include <fmt/format.h>
#include <map>

#include "commands.h"
#include "lens/compare.h"
#include "lens/error.h"
#include "lens/output.h"
#include "util/atomic_file.h"

namespace lens::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct MergeOptions {
  std::string output;
  std::vector<std::string> shards;
  int64_t expect = -1;
  bool quiet = false;
};

void run_merge(const MergeOptions& o) {
  set_quiet(o.quiet);
  const fs::path out_dir = fs::absolute(o.output).parent_path();
  std::map<int64_t, std::pair<json, std::string>> records;  // index -> record, its shard file
  for (const auto& shard : o.shards) {
    for (json& rec : read_records(shard)) {
      if (!rec.contains("index") || !rec["index"].is_number_integer())
        throw InputError(shard + ": a record without \"index\"; not an output of 'lens run --prompts'");
      const int64_t i = rec["index"].get<int64_t>();
      if (rec.contains("logprobs")) {
        const fs::path side = fs::absolute(shard).parent_path() / rec["logprobs"]["file"].get<std::string>();
        rec["logprobs"]["file"] = fs::relative(side, out_dir).string();
      }
      auto [it, fresh] = records.emplace(i, std::make_pair(std::move(rec), shard));
      if (!fresh) throw InputError(fmt::format("record {} appears in both {} and {}", i, it->second.second, shard));
    }
  }
  const int64_t count = o.expect >= 0 ? o.expect : (records.empty() ? 0 : records.rbegin()->first + 1);
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < count; ++i)
    if (!records.count(i)) missing.push_back(i);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < std::min<size_t>(missing.size(), 10); ++i) list += (i ? "," : "") + std::to_string(missing[i]);
    throw InputError(fmt::format("{} of {} records missing (indices {}{}); is a shard absent or unfinished?",
                                 missing.size(), count, list, missing.size() > 10 ? ",..." : ""));
  }
  if (!records.empty() && records.rbegin()->first >= count)
    throw InputError(fmt::format("record {} is beyond --expect {}", records.rbegin()->first, count));
  AtomicFile file(o.output);
  for (const auto& [i, rec] : records) file.stream() << dump_json(rec.first) << '\n';
  file.commit();
  log(fmt::format("merged {} records from {} shard file(s) into {}", records.size(), o.shards.size(), o.output));
}

}  // namespace

void setup_merge(CLI::App& app) {
  auto o = std::make_shared<MergeOptions>();
  auto* cmd = app.add_subcommand("merge", "Join shard outputs of 'lens run --prompts --shard K/N' in input order");
  cmd->add_option("output", o->output, "Merged JSONL to write (atomically)")->required();
  cmd->add_option("shards", o->shards, "Shard outputs")->required()->check(CLI::ExistingFile);
  cmd->add_option("--expect", o->expect, "Number of prompts (default: highest index + 1)")->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_flag("-q,--quiet", o->quiet, "No log lines on stderr");
  cmd->callback([o] { run_merge(*o); });
}

}  // namespace lens::cli
