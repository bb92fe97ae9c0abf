// Downloads from the Hugging Face Hub into the Hugging Face cache, in the layout huggingface_hub
// uses (models--org--name/{blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>,
// refs/<revision>}), so either tool finds the other's downloads without copies. Only the files a
// run needs (config, tokenizer, safetensors weights); never *.bin / *.pth / *.pt. Plain HTTP(S)
// through libcurl; no Xet protocol, no uploads, no datasets or spaces.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "lens/registry.h"

namespace lens {

/// Where and how to reach the Hub; hub_options_from_env() fills it the way huggingface_hub does.
struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // $HF_ENDPOINT
  std::string token;                                // $HF_TOKEN, else the token file ($HF_TOKEN_PATH, $HF_HOME/token)
  std::filesystem::path cache;                      // $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  bool offline = false;                             // $HF_HUB_OFFLINE: never touch the network
  enum class Progress { kNone, kBar, kLines } progress = Progress::kNone;  // on stderr
  std::vector<std::string> include;  // glob patterns (fnmatch); when set, they replace the default file choice
  std::vector<std::string> exclude;  // glob patterns removed from the choice
};

/// The options from the environment; progress is a bar when stderr is a terminal, else a line every few seconds.
HubOptions hub_options_from_env(bool quiet);

struct HubSnapshot {
  std::string repo;
  std::string revision;                // as asked ("main", a tag, a commit)
  std::string commit;                  // the 40-hex commit it resolved to
  std::filesystem::path path;          // <cache>/models--org--name/snapshots/<commit>
  std::vector<std::string> files;      // files in the snapshot that were asked for
  int64_t bytes_downloaded = 0;        // 0 when everything was already cached
};

/// Downloads `repo` at `revision` (files chosen as above) into options.cache and returns the snapshot.
/// Throws ModelError for a missing repo / revision / file, a gated repo without access, or a repo
/// with no safetensors weights; NetworkError for connection failures, interrupted transfers (the
/// partial blobs/<etag>.incomplete is resumed by the next call), bytes that do not match their
/// hash, and a full disk. Nothing appears in snapshots/ before its blob is complete and verified.
HubSnapshot hub_download(const std::string& repo, const std::string& revision, const HubOptions& options);

/// Whether a checkpoint directory has what a run needs: config.json and model.safetensors, or
/// model.safetensors.index.json with every shard it lists.
bool checkpoint_complete(const std::filesystem::path& dir);

/// resolve_model(), and when a repo id (or an alias of one) is not found complete locally, downloads
/// it (unless options.offline, which then fails naming HF_HUB_OFFLINE). `spec` may end in @revision.
ResolvedModel resolve_or_download(const std::string& spec, const HubOptions& options);

}  // namespace lens
