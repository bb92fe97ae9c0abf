// `lens download org/name [--revision R] [--include GLOB] [--exclude GLOB]`: fetches a model from the
// Hugging Face Hub ($HF_ENDPOINT) into the Hugging Face cache and prints the snapshot directory on
// stdout. `lens run --model org/name` does the same on first use; this only makes it explicit.
#include <iostream>

#include "commands.h"
#include "lens/error.h"
#include "lens/hub.h"

namespace lens::cli {

namespace {

struct DownloadOptions {
  std::string repo;
  std::string revision;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  bool quiet = false;
};

void run_download(const DownloadOptions& o) {
  set_quiet(o.quiet);
  HubOptions hub = hub_options_from_env(o.quiet);
  hub.include = o.include;
  hub.exclude = o.exclude;
  std::string repo = o.repo, revision = o.revision, at_revision;
  split_revision(o.repo, &repo, &at_revision);
  if (!at_revision.empty() && !revision.empty() && at_revision != revision)
    throw UsageError("--revision " + revision + " contradicts " + o.repo);
  if (revision.empty()) revision = at_revision.empty() ? "main" : at_revision;
  for (const auto& e : registry())
    if (e.alias == repo) repo = e.repo;
  const HubSnapshot snap = hub_download(repo, revision, hub);
  log("lens: " + repo + "@" + revision + " is commit " + snap.commit + ": " + std::to_string(snap.files.size()) +
      " files, " + std::to_string(snap.bytes_downloaded) + " bytes downloaded");
  std::cout << snap.path.string() << std::endl;
}

}  // namespace

void setup_download(CLI::App& app) {
  auto opts = std::make_shared<DownloadOptions>();
  auto* cmd = app.add_subcommand("download",
                                 "Download a model from the Hugging Face Hub ($HF_ENDPOINT) into the Hugging Face cache "
                                 "and print its snapshot directory");
  cmd->add_option("repo", opts->repo, "Repo id org/name[@revision], or a registry alias")->required();
  cmd->add_option("--revision", opts->revision, "Branch, tag or commit (default: main)");
  cmd->add_option("--include", opts->include,
                  "Only files matching this glob (repeatable); replaces the default choice (config, tokenizer, "
                  "safetensors weights)");
  cmd->add_option("--exclude", opts->exclude, "Leave out files matching this glob (repeatable)");
  cmd->add_flag("-q,--quiet", opts->quiet, "No progress or log lines on stderr");
  cmd->callback([opts] { run_download(*opts); });
}

}  // namespace lens::cli
