// Hugging Face Hub downloads (see lens/hub.h), following huggingface_hub's file_download.py:
// GET /api/models/<repo>/revision/<rev> for the commit and file list, HEAD /<repo>/resolve/<commit>/<file>
// for the etag and size (X-Linked-Etag / X-Linked-Size when the Hub redirects to a storage host),
// then GET into blobs/<etag>.incomplete under a flock on .locks/models--org--name/<etag>.lock (the
// lock huggingface_hub takes), resumed with Range, verified (size; sha256 for LFS etags) and renamed
// to blobs/<etag>; the snapshot symlink comes last. Not here: Xet transfers, parallel downloads,
// automatic retries (a failed call leaves a resumable .incomplete and says to run it again).
#include "lens/hub.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "lens/error.h"
#include "util/atomic_file.h"
#include "util/sha256.h"

namespace lens {

namespace fs = std::filesystem;

namespace {

bool env_true(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s == "1" || s == "on" || s == "yes" || s == "true";
}

std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  if (in) std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\n')) line.pop_back();
  return line;
}

// Percent-encodes everything but RFC 3986 unreserved characters (and '/' when keep_slash), as
// Python's urllib.parse.quote does for hf_hub_url.
std::string quote(const std::string& s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// "scheme://host[:port]" of an absolute URL ("" for a relative one).
std::string origin(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  const auto path = url.find('/', scheme + 3);
  std::string o = url.substr(0, path);
  std::transform(o.begin(), o.end(), o.begin(), ::tolower);
  return o;
}

std::string resolve_location(const std::string& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  if (!location.empty() && location[0] == '/') return origin(base) + location;
  return base.substr(0, base.rfind('/') + 1) + location;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) b /= 1000, ++u;
  return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.1f} {}", b, units[u]);
}

std::string human_time(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  const int t = static_cast<int>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

// ---------------------------------------------------------------------------------------------
// HTTP through libcurl: one request, no automatic redirects (the caller decides where the token goes).

struct HttpResult {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response
  std::string body;                            // error bodies and API answers (not file data)
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  std::string url;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Receives file data of a 2xx answer; returns false to abort the transfer.
using DataSink = std::function<bool(const char*, size_t, long status)>;

struct CurlState {
  HttpResult* res;
  const DataSink* sink;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<CurlState*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    st->res->headers.clear();  // a new response (after 100 Continue)
    const auto sp = line.find(' ');
    if (sp != std::string::npos) st->res->status = std::atol(line.c_str() + sp + 1);
  } else if (const auto colon = line.find(':'); colon != std::string::npos) {
    std::string key = line.substr(0, colon);
    std::transform(key.begin(), key.end(), key.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    st->res->headers[key] = value;
  }
  return size * n;
}

size_t on_data(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<CurlState*>(user);
  const size_t bytes = size * n;
  if (st->sink && *st->sink && st->res->status >= 200 && st->res->status < 300)
    return (*st->sink)(data, bytes, st->res->status) ? bytes : 0;
  if (st->res->body.size() < (64u << 20)) st->res->body.append(data, bytes);
  return bytes;
}

HttpResult http_once(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                     const DataSink* sink) {
  static const bool kInit = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!kInit) throw NetworkError("libcurl failed to initialise");
  HttpResult res;
  res.url = url;
  CURL* c = curl_easy_init();
  if (!c) throw NetworkError("libcurl: cannot create a handle");
  struct curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  char err[CURL_ERROR_SIZE] = {0};
  CurlState st{&res, sink};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  // A stalled transfer (under 1 byte/s for 60 s) fails instead of hanging; the .incomplete stays.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lens/0.1.0");
  res.curl = curl_easy_perform(c);
  if (res.curl != CURLE_OK) res.curl_error = err[0] ? err : curl_easy_strerror(res.curl);
  long code = 0;
  if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code) res.status = code;
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  return res;
}

// A request to the Hub: the token goes only to the endpoint's own origin (never to a storage
// host it redirects to). follow_cross_origin=false stops at a redirect to another origin, as
// huggingface_hub's HEAD does, so the caller can read X-Linked-* and the Location.
HttpResult hub_http(const std::string& method, std::string url, const HubOptions& o, const DataSink* sink,
                    const std::vector<std::string>& extra, bool follow_cross_origin) {
  const std::string hub_origin = origin(o.endpoint);
  for (int hop = 0; hop < 10; ++hop) {
    std::vector<std::string> headers = extra;
    headers.push_back("Accept-Encoding: identity");  // the real size, no compression
    if (!o.token.empty() && origin(url) == hub_origin) headers.push_back("Authorization: Bearer " + o.token);
    HttpResult r = http_once(method, url, headers, sink);
    if (r.curl != CURLE_OK || r.status < 300 || r.status >= 400 || r.header("location").empty()) return r;
    const std::string next = resolve_location(url, r.header("location"));
    if (!follow_cross_origin && origin(next) != origin(url)) {
      r.headers["location"] = next;
      return r;
    }
    url = next;
  }
  throw NetworkError("too many redirects from " + url);
}

// One line for a failed Hub answer: missing repo / revision / file and access problems are model
// errors (exit 4), the rest network errors (exit 6).
[[noreturn]] void throw_hub_error(const HttpResult& r, const HubOptions& o, const std::string& repo,
                                  const std::string& revision, const std::string& file) {
  if (r.curl != CURLE_OK)
    throw NetworkError(fmt::format("cannot reach {} ({}); check the connection and HF_ENDPOINT, or set "
                                   "HF_HUB_OFFLINE=1 to use only the local cache",
                                   o.endpoint, r.curl_error));
  const std::string code = r.header("x-error-code");
  const std::string page = o.endpoint + "/" + repo;
  if (code == "RevisionNotFound")
    throw ModelError(fmt::format("{}: revision '{}' not found on {}", repo, revision, o.endpoint));
  if (code == "EntryNotFound" || (r.status == 404 && !file.empty() && code != "RepoNotFound"))
    throw ModelError(fmt::format("{}: no file '{}' at revision '{}'", repo, file, revision));
  if (r.status == 401 || r.status == 403 || code == "GatedRepo") {
    const std::string why = o.token.empty() ? "no token was sent" : "the token sent does not grant access";
    throw ModelError(fmt::format("{}: access denied (HTTP {}, {}): the repository is gated or private (or does not "
                                 "exist); accept the licence at {} and set HF_TOKEN",
                                 repo, r.status, why, page));
  }
  if (r.status == 404 || code == "RepoNotFound")
    throw ModelError(fmt::format("{}: repository not found on {}", repo, o.endpoint));
  std::string msg = r.header("x-error-message");
  if (msg.empty()) msg = r.body.substr(0, 200);
  throw NetworkError(fmt::format("HTTP {} from {}{}", r.status, r.url, msg.empty() ? "" : ": " + msg));
}

// ---------------------------------------------------------------------------------------------
// Progress on stderr: a bar redrawn in place on a terminal, else a line every few seconds.

class Progress {
 public:
  Progress(HubOptions::Progress mode, std::string name, int64_t total, int64_t start)
      : mode_(mode), name_(std::move(name)), total_(total), start_bytes_(start), t0_(now()), last_(t0_) {}

  void update(int64_t bytes, bool done = false) {
    if (mode_ == HubOptions::Progress::kNone) return;
    const double t = now();
    const double min_gap = mode_ == HubOptions::Progress::kBar ? 0.1 : 5.0;
    const bool first_bar = mode_ == HubOptions::Progress::kBar && !drawn_;  // lines wait for the first gap
    if (!done && !first_bar && t - last_ < min_gap) return;
    last_ = t;
    drawn_ = true;
    const double rate = (bytes - start_bytes_) / std::max(t - t0_, 1e-3);
    const double pct = total_ > 0 ? 100.0 * bytes / total_ : 0;
    const double eta = rate > 0 && total_ > 0 ? (total_ - bytes) / rate : -1;
    if (mode_ == HubOptions::Progress::kBar) {
      const int width = 24, fill = total_ > 0 ? static_cast<int>(width * bytes / total_) : 0;
      std::string line = fmt::format("\r{:<28.28} {:3.0f}% [{}{}] {} / {} {}/s ETA {}", name_, pct,
                                     std::string(fill, '#'), std::string(width - fill, '.'), human_bytes(bytes),
                                     human_bytes(total_), human_bytes(rate), human_time(done ? 0 : eta));
      std::cerr << line << (done ? "\n" : "") << std::flush;
    } else if (done) {
      std::cerr << fmt::format("downloaded {} ({} in {:.1f} s)", name_, human_bytes(bytes), t - t0_) << std::endl;
    } else {
      std::cerr << fmt::format("downloading {}: {:.0f}% ({} of {}, {}/s, ETA {})", name_, pct, human_bytes(bytes),
                               human_bytes(total_), human_bytes(rate), human_time(eta))
                << std::endl;
    }
  }
  // Ends a bar left mid-line by a failure, so the error starts on its own line.
  void abort() {
    if (mode_ == HubOptions::Progress::kBar && drawn_) std::cerr << std::endl;
  }

 private:
  static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  HubOptions::Progress mode_;
  std::string name_;
  int64_t total_, start_bytes_;
  double t0_, last_;
  bool drawn_ = false;
};

// ---------------------------------------------------------------------------------------------

struct FileMeta {
  std::string file;
  std::string etag;  // blob name: the sha256 of an LFS file, the git blob sha1 otherwise
  int64_t size = -1;
  std::string url;   // where the bytes are (the storage host for LFS files)
};

bool is_sha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

bool is_commit(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

// huggingface_hub's _normalize_etag: drop a weak "W/" prefix and the quotes.
std::string normalize_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  e.erase(std::remove(e.begin(), e.end(), '"'), e.end());
  return e;
}

// The files a run needs out of a repo's file list; see lens/hub.h.
std::vector<std::string> choose_files(const std::vector<std::string>& siblings, const HubOptions& o,
                                      const std::string& repo, const std::function<std::vector<std::string>()>& shards) {
  auto has = [&](const std::string& f) { return std::find(siblings.begin(), siblings.end(), f) != siblings.end(); };
  auto matches = [](const std::vector<std::string>& globs, const std::string& f) {
    for (const auto& g : globs)
      if (fnmatch(g.c_str(), f.c_str(), 0) == 0) return true;
    return false;
  };
  std::vector<std::string> out;
  if (!o.include.empty()) {
    for (const auto& f : siblings)
      if (matches(o.include, f)) out.push_back(f);
  } else {
    if (!has("config.json")) throw ModelError(repo + ": the repository has no config.json (not a transformers model)");
    for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                          "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt"})
      if (has(f)) out.push_back(f);
    if (has("model.safetensors.index.json")) {
      out.push_back("model.safetensors.index.json");
      for (const auto& s : shards()) {
        if (!has(s)) throw ModelError(repo + ": model.safetensors.index.json lists '" + s + "', which the repository lacks");
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
      }
    } else if (has("model.safetensors")) {
      out.push_back("model.safetensors");
    } else {
      std::string bins;
      for (const auto& f : siblings) {
        const auto ext = fs::path(f).extension().string();
        if (ext == ".bin" || ext == ".pth" || ext == ".pt") bins += (bins.empty() ? "" : ", ") + f;
      }
      if (!bins.empty())
        throw ModelError(repo + ": the repository has only PyTorch pickle weights (" + bins +
                         "); lens needs safetensors (model.safetensors or a sharded model.safetensors.index.json)");
      throw ModelError(repo + ": the repository has no model.safetensors or model.safetensors.index.json");
    }
  }
  std::vector<std::string> kept;
  for (const auto& f : out)
    if (!matches(o.exclude, f)) kept.push_back(f);
  if (kept.empty()) throw UsageError(repo + ": --include / --exclude leave no file to download");
  return kept;
}

// Holds an exclusive flock on a lock file for its lifetime.
class FileLock {
 public:
  FileLock(const fs::path& path, const std::string& what, HubOptions::Progress mode) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ < 0) throw NetworkError("cannot open lock file " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (mode != HubOptions::Progress::kNone)
        std::cerr << "waiting for another process downloading " << what << " (" << path.string() << ")" << std::endl;
      while (::flock(fd_, LOCK_EX) != 0) {
        if (errno != EINTR) throw NetworkError("cannot lock " + path.string() + ": " + std::strerror(errno));
      }
    }
  }
  ~FileLock() { ::close(fd_); }  // closing releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Downloads one blob into blobs/<etag> (resuming blobs/<etag>.incomplete); returns the bytes fetched.
int64_t fetch_blob(const fs::path& storage, const fs::path& lock_dir, const FileMeta& m, const HubOptions& o,
                   const std::string& repo, const std::string& revision) {
  const fs::path blob = storage / "blobs" / m.etag;
  const fs::path partial = fs::path(blob.string() + ".incomplete");
  fs::create_directories(blob.parent_path());
  fs::create_directories(lock_dir);
  FileLock lock(lock_dir / (m.etag + ".lock"), m.file, o.progress);
  if (fs::exists(blob)) return 0;  // another process finished it while we waited

  const int fd = ::open(partial.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) throw NetworkError("cannot write " + partial.string() + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat sb {};
  ::fstat(fd, &sb);
  int64_t have = sb.st_size;
  if (m.size >= 0 && have > m.size) have = 0;  // longer than the file: not ours, start over
  if (::ftruncate(fd, have) != 0 || ::lseek(fd, have, SEEK_SET) < 0)
    throw NetworkError("cannot write " + partial.string() + ": " + std::strerror(errno));

  // The hash covers the bytes already there: read them back once.
  Sha256 sha;
  if (have > 0) {
    std::vector<char> buf(1 << 20);
    int64_t off = 0;
    while (off < have) {
      const ssize_t n = ::pread(fd, buf.data(), std::min<int64_t>(buf.size(), have - off), off);
      if (n <= 0) throw NetworkError("cannot read " + partial.string() + ": " + std::strerror(errno));
      sha.update(buf.data(), n);
      off += n;
    }
  }
  const int64_t resumed_from = have;
  Progress progress(o.progress, m.file, m.size, have);
  int write_errno = 0;
  bool seen_data = false;
  int64_t fetched = 0;
  if (m.size < 0 || have < m.size) {
    DataSink sink = [&](const char* data, size_t n, long status) {
      if (status == 200 && have > 0 && !seen_data) {  // the server ignored our Range: start over
        have = 0;
        sha = Sha256();
        if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) < 0) {
          write_errno = errno;
          return false;
        }
      }
      seen_data = true;
      for (size_t off = 0; off < n;) {
        const ssize_t w = ::write(fd, data + off, n - off);
        if (w < 0) {
          if (errno == EINTR) continue;
          write_errno = errno;
          return false;
        }
        off += w;
      }
      sha.update(data, n);
      have += n;
      fetched += n;
      progress.update(have);
      return true;
    };
    std::vector<std::string> extra;
    if (have > 0) extra.push_back(fmt::format("Range: bytes={}-", have));
    if (resumed_from > 0 && o.progress != HubOptions::Progress::kNone)
      std::cerr << fmt::format("resuming {} at {} of {}", m.file, human_bytes(have), human_bytes(m.size)) << std::endl;
    const HttpResult r = hub_http("GET", m.url, o, &sink, extra, true);
    if (write_errno) {
      progress.abort();
      if (write_errno == ENOSPC || write_errno == EDQUOT)
        throw NetworkError(fmt::format("disk full while downloading {} to {} ({} of {} written); free space and run "
                                       "again to resume",
                                       m.file, partial.string(), human_bytes(have), human_bytes(m.size)));
      throw NetworkError("cannot write " + partial.string() + ": " + std::strerror(write_errno));
    }
    if (r.curl != CURLE_OK && r.status >= 200 && r.status < 300) {
      progress.abort();
      throw NetworkError(fmt::format("download of {} interrupted after {} of {} ({}); run the same command again to "
                                     "resume from {}",
                                     m.file, human_bytes(have), human_bytes(m.size), r.curl_error, partial.string()));
    }
    if (r.status == 416 && m.size >= 0 && have == m.size) {
      // already complete
    } else if (r.curl != CURLE_OK || r.status < 200 || r.status >= 300) {
      progress.abort();
      throw_hub_error(r, o, repo, revision, m.file);
    }
  }
  if (::fsync(fd) != 0 && (errno == ENOSPC || errno == EDQUOT))
    throw NetworkError("disk full while writing " + partial.string() + "; free space and run again to resume");
  if (m.size >= 0 && have != m.size) {
    progress.abort();
    throw NetworkError(fmt::format("download of {} ended after {} of {} bytes; run the same command again to resume",
                                   m.file, have, m.size));
  }
  if (is_sha256(m.etag)) {
    const std::string got = sha.hex();
    if (got != m.etag) {
      progress.abort();
      std::error_code ec;
      fs::remove(partial, ec);  // resuming wrong bytes would only keep them wrong
      throw NetworkError(fmt::format("{}: the downloaded bytes are corrupt (sha256 {}, the Hub says {}); removed them, "
                                     "run again to download afresh",
                                     m.file, got, m.etag));
    }
  }
  progress.update(have, true);
  ::fchmod(fd, 0644);
  std::error_code ec;
  fs::rename(partial, blob, ec);
  if (ec) throw NetworkError("cannot rename " + partial.string() + " to " + blob.string() + ": " + ec.message());
  return fetched;
}

// snapshots/<commit>/<file> -> ../../blobs/<etag> (one more ../ per directory level in <file>),
// made under a temporary name and renamed, so it appears whole.
void link_snapshot_file(const fs::path& storage, const std::string& commit, const FileMeta& m) {
  const fs::path pointer = storage / "snapshots" / commit / m.file;
  std::error_code ec;
  if (fs::exists(pointer, ec)) return;
  fs::create_directories(pointer.parent_path());
  std::string target = "../../";
  for (char c : m.file)
    if (c == '/') target += "../";
  target += "blobs/" + m.etag;
  const fs::path tmp = fs::path(pointer.string() + ".tmp." + std::to_string(::getpid()));
  fs::remove(tmp, ec);
  if (::symlink(target.c_str(), tmp.c_str()) != 0)
    throw NetworkError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  fs::rename(tmp, pointer, ec);
  if (ec) throw NetworkError("cannot rename " + tmp.string() + ": " + ec.message());
}

bool valid_repo_id(const std::string& repo) {
  const auto slash = repo.find('/');
  if (slash == std::string::npos || repo.find('/', slash + 1) != std::string::npos) return false;
  if (repo.find("--") != std::string::npos || repo.find("..") != std::string::npos) return false;
  for (const std::string& part : {repo.substr(0, slash), repo.substr(slash + 1)}) {
    if (part.empty() || !std::isalnum(static_cast<unsigned char>(part[0]))) return false;
    for (unsigned char c : part)
      if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

HubOptions hub_options_from_env(bool quiet) {
  HubOptions o;
  if (const char* e = std::getenv("HF_ENDPOINT"); e && *e) o.endpoint = e;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  if (const char* t = std::getenv("HF_TOKEN"); t && *t) {
    o.token = t;
  } else {
    fs::path token_file;
    if (const char* p = std::getenv("HF_TOKEN_PATH"); p && *p)
      token_file = p;
    else if (const char* h = std::getenv("HF_HOME"); h && *h)
      token_file = fs::path(h) / "token";
    else if (const char* home = std::getenv("HOME"))
      token_file = fs::path(home) / ".cache" / "huggingface" / "token";
    if (!token_file.empty()) o.token = read_first_line(token_file);
  }
  const auto caches = hf_cache_dirs();
  if (!caches.empty()) o.cache = caches.front();
  o.offline = env_true("HF_HUB_OFFLINE");
  o.progress = quiet ? HubOptions::Progress::kNone
                     : (::isatty(STDERR_FILENO) ? HubOptions::Progress::kBar : HubOptions::Progress::kLines);
  return o;
}

bool checkpoint_complete(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / "config.json", ec)) return false;
  if (fs::exists(dir / "model.safetensors", ec)) return true;
  const fs::path index = dir / "model.safetensors.index.json";
  if (!fs::exists(index, ec)) return false;
  try {
    std::ifstream in(index);
    const auto j = nlohmann::json::parse(in);
    for (const auto& [name, shard] : j.at("weight_map").items())
      if (!fs::exists(dir / shard.get<std::string>(), ec)) return false;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

HubSnapshot hub_download(const std::string& repo, const std::string& revision_in, const HubOptions& o) {
  const std::string revision = revision_in.empty() ? "main" : revision_in;
  if (!valid_repo_id(repo)) throw UsageError("'" + repo + "' is not a Hugging Face repo id (org/name)");
  if (o.offline)
    throw ModelError(repo + ": not in the Hugging Face cache (" + o.cache.string() +
                     ") and HF_HUB_OFFLINE is set, so lens did not try the Hub");
  if (o.cache.empty()) throw UsageError("no Hugging Face cache directory: set HF_HUB_CACHE, HF_HOME or HOME");

  // The commit the revision names, and the repo's file list.
  const std::string api = o.endpoint + "/api/models/" + repo + "/revision/" + quote(revision, false);
  const HttpResult info = hub_http("GET", api, o, nullptr, {}, true);
  if (info.curl != CURLE_OK || info.status != 200) throw_hub_error(info, o, repo, revision, "");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(info.body);
  } catch (const std::exception& e) {
    throw NetworkError(api + ": the answer is not JSON (" + e.what() + "); is HF_ENDPOINT a Hub?");
  }
  HubSnapshot snap;
  snap.repo = repo;
  snap.revision = revision;
  snap.commit = j.value("sha", "");
  if (!is_commit(snap.commit)) throw NetworkError(api + ": no commit sha in the answer; is HF_ENDPOINT a Hub?");
  std::vector<std::string> siblings;
  if (j.contains("siblings") && j["siblings"].is_array())
    for (const auto& s : j["siblings"])
      if (s.contains("rfilename")) siblings.push_back(s["rfilename"].get<std::string>());

  const fs::path storage = o.cache / hf_repo_folder(repo);
  const fs::path lock_dir = o.cache / ".locks" / hf_repo_folder(repo);

  auto head = [&](const std::string& file) {
    const std::string url = o.endpoint + "/" + repo + "/resolve/" + snap.commit + "/" + quote(file, true);
    const HttpResult r = hub_http("HEAD", url, o, nullptr, {}, false);
    if (r.curl != CURLE_OK || (r.status >= 400)) throw_hub_error(r, o, repo, revision, file);
    FileMeta m;
    m.file = file;
    m.etag = normalize_etag(!r.header("x-linked-etag").empty() ? r.header("x-linked-etag") : r.header("etag"));
    const std::string size = !r.header("x-linked-size").empty()
                                 ? r.header("x-linked-size")
                                 : (r.status >= 300 ? "" : r.header("content-length"));
    m.size = size.empty() ? -1 : std::atoll(size.c_str());
    m.url = r.status >= 300 && !r.header("location").empty() ? r.header("location") : url;
    if (m.etag.empty() || m.etag.find('/') != std::string::npos || m.etag.find("..") != std::string::npos)
      throw NetworkError(url + ": no usable ETag in the answer; is HF_ENDPOINT a Hub?");
    return m;
  };
  // Shards come from the index, which is fetched first (it is small).
  auto shards = [&]() {
    const FileMeta m = head("model.safetensors.index.json");
    fetch_blob(storage, lock_dir, m, o, repo, revision);
    std::ifstream in(storage / "blobs" / m.etag);
    std::vector<std::string> out;
    try {
      const auto idx = nlohmann::json::parse(in);
      for (const auto& [name, shard] : idx.at("weight_map").items()) {
        const std::string s = shard.get<std::string>();
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
      }
    } catch (const std::exception& e) {
      throw ModelError(repo + ": model.safetensors.index.json is unreadable: " + e.what());
    }
    return out;
  };
  snap.files = choose_files(siblings, o, repo, shards);
  // Names come from the server: none may leave snapshots/<commit>/.
  for (const auto& f : snap.files)
    if (f.empty() || f[0] == '/' || f == ".." || f.rfind("../", 0) == 0 || f.find("/../") != std::string::npos ||
        (f.size() >= 3 && f.compare(f.size() - 3, 3, "/..") == 0))
      throw NetworkError(repo + ": the Hub lists a file name lens refuses to write: '" + f + "'");

  // Metadata of every file first: a missing file fails before any byte is written.
  std::vector<FileMeta> metas;
  for (const auto& f : snap.files) metas.push_back(head(f));
  int64_t need = 0;
  for (const auto& m : metas) {
    std::error_code ec;
    if (m.size < 0 || fs::exists(storage / "blobs" / m.etag, ec)) continue;
    const auto part = fs::path((storage / "blobs" / m.etag).string() + ".incomplete");
    need += m.size - (fs::exists(part, ec) ? std::min<int64_t>(fs::file_size(part, ec), m.size) : 0);
  }
  fs::create_directories(storage / "blobs");
  struct statvfs vfs {};
  if (need > 0 && ::statvfs((storage / "blobs").c_str(), &vfs) == 0) {
    const int64_t free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    if (free_bytes < need)
      throw NetworkError(fmt::format("disk full: {} needs {} but only {} are free in {}", repo, human_bytes(need),
                                     human_bytes(free_bytes), storage.string()));
  }
  // config.json last: a snapshot that has it is one whose other files are all there.
  std::stable_partition(metas.begin(), metas.end(), [](const FileMeta& m) { return m.file != "config.json"; });
  for (const auto& m : metas) {
    snap.bytes_downloaded += fetch_blob(storage, lock_dir, m, o, repo, revision);
    link_snapshot_file(storage, snap.commit, m);
  }
  if (revision != snap.commit) {
    fs::create_directories((storage / "refs" / revision).parent_path());
    write_file_atomic(storage / "refs" / revision, snap.commit);
  }
  snap.path = storage / "snapshots" / snap.commit;
  return snap;
}

ResolvedModel resolve_or_download(const std::string& spec, const HubOptions& o) {
  std::string name, revision;
  split_revision(spec, &name, &revision);
  std::string repo = name;
  for (const auto& e : registry())
    if (e.alias == name) repo = e.repo;
  const bool hub_repo = valid_repo_id(repo) && !fs::is_directory(spec);
  std::optional<ResolvedModel> local;
  try {
    local = resolve_model(spec);
  } catch (const ModelError&) {
    if (!hub_repo || o.offline) throw;  // its message names HF_HUB_OFFLINE and `lens download`
  }
  if (local) {
    if (local->source != "hf-cache" || checkpoint_complete(local->path)) return *local;
    if (o.offline)
      throw ModelError(local->path.string() + ": the cached snapshot lacks weights (model.safetensors or its shards) "
                       "and HF_HUB_OFFLINE is set, so lens did not try the Hub");
  }
  const HubSnapshot snap = hub_download(repo, revision, o);
  return {name, repo, snap.path, "hub"};
}

}  // namespace lens
