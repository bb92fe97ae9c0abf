// Downloads from a Hugging Face Hub: each test starts tests/hub/fake_hub.py (127.0.0.1 only, an
// ephemeral port) serving ../shared/models/stories260K as test-org/stories260K, points HF_ENDPOINT at
// it with an empty temporary HF_HUB_CACHE, and checks what lens fetches, what lands in the cache and
// what the fake hub was asked (it logs every request). Skips when python3 is not on PATH.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cli_util.h"
#include "test_util.h"

extern char** environ;

namespace lens {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class FakeHub {
 public:
  FakeHub() : state_(test::temp_dir("fakehub")) {
    const std::string script = (test::source_dir() / "tests" / "hub" / "fake_hub.py").string();
    const std::string models = (test::shared_dir() / "models").string();
    const std::string state = state_.string();
    const char* argv[] = {"python3", script.c_str(), "--state", state.c_str(), "--models-dir", models.c_str(), nullptr};
    if (posix_spawnp(&pid_, "python3", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) pid_ = -1;
    for (int i = 0; i < 300 && pid_ > 0 && !fs::exists(state_ / "ports.json"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (fs::exists(state_ / "ports.json")) port_ = test::read_json(state_ / "ports.json")["hub"].get<int>();
  }
  ~FakeHub() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(state_);
  }
  bool ok() const { return port_ > 0; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Every request so far, one JSON object each (server, method, path, auth, range).
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(state_ / "requests.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  void configure(const nlohmann::json& cfg) const {
    std::ofstream(state_ / "config.tmp") << cfg.dump();
    fs::rename(state_ / "config.tmp", state_ / "config.json");
  }

 private:
  fs::path state_;
  pid_t pid_ = -1;
  int port_ = 0;
};

bool have_python() { return std::system("command -v python3 >/dev/null 2>&1") == 0; }

#define REQUIRE_FAKE_HUB(hub)                                                              \
  if (!have_python()) GTEST_SKIP() << "python3 is not on PATH: the fake Hub cannot run";   \
  LENS_REQUIRE_SHARED(test::shared_dir() / "models" / "stories260K");                      \
  FakeHub hub;                                                                             \
  ASSERT_TRUE(hub.ok()) << "tests/hub/fake_hub.py did not start"

class Download : public ::testing::Test {
 protected:
  void SetUp() override { home_ = test::temp_dir("hub_home"); }
  void TearDown() override { fs::remove_all(home_); }
  fs::path cache() const { return home_ / "cache"; }
  fs::path repo_dir(const std::string& name = "stories260K") const { return cache() / ("models--test-org--" + name); }
  // No token, an empty cache, nothing from the user's own Hugging Face settings.
  std::string env(const FakeHub& hub, const std::string& extra = "") const {
    return "HF_ENDPOINT=" + hub.endpoint() + " HF_HUB_CACHE=" + cache().string() + " HF_HOME=" + (home_ / "hf").string() +
           " HOME=" + home_.string() + " HF_TOKEN= HF_TOKEN_PATH= HF_HUB_OFFLINE=0 " + extra;
  }
  std::string commit() const { return slurp(repo_dir() / "refs" / "main"); }
  fs::path home_;
};

const char* kPrompt = "--prompt 'Once upon a time there was a little girl' --json -k 3";
fs::path shared_stories() { return test::shared_dir() / "models" / "stories260K"; }

size_t count(const std::vector<nlohmann::json>& reqs, const std::string& server, const std::string& method = "") {
  size_t n = 0;
  for (const auto& r : reqs) n += r["server"] == server && (method.empty() || r["method"] == method);
  return n;
}

TEST_F(Download, FirstRunDownloadsSecondRunMakesNoRequest) {
  REQUIRE_FAKE_HUB(hub);
  test::CliResult r = test::run_cli("run --model test-org/stories260K " + std::string(kPrompt), env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto first = hub.requests();
  EXPECT_GT(count(first, "storage", "GET"), 0u);
  for (const auto& q : first) {
    if (q["server"] == "storage") {
      EXPECT_FALSE(q["auth"].get<bool>()) << q.dump();
    }
  }
  const auto j = nlohmann::json::parse(r.out);
  const std::string sha = commit();
  ASSERT_EQ(sha.size(), 40u);
  const fs::path snap = repo_dir() / "snapshots" / sha;
  EXPECT_EQ(j["model"]["path"], snap.string());
  // Exactly the files a run needs, as relative symlinks into blobs/, byte-identical to the source.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(snap)) {
    names.push_back(e.path().filename().string());
    ASSERT_TRUE(fs::is_symlink(e.path())) << e.path();
    const std::string target = fs::read_symlink(e.path()).string();
    EXPECT_EQ(target.rfind("../../blobs/", 0), 0u) << target;
    EXPECT_EQ(slurp(e.path()), slurp(shared_stories() / e.path().filename())) << e.path();
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors",
                                              "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json"}));
  // LFS blobs are named by their sha256; no partial files are left.
  EXPECT_TRUE(fs::exists(repo_dir() / "blobs" / "407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd"));
  for (const auto& e : fs::directory_iterator(repo_dir() / "blobs"))
    EXPECT_EQ(e.path().extension(), "") << e.path();
  // The same numbers as the local copy.
  test::CliResult local = test::run_cli("run --model " + shared_stories().string() + " " + kPrompt);
  ASSERT_EQ(local.code, 0) << local.err;
  EXPECT_EQ(j["layers"], nlohmann::json::parse(local.out)["layers"]);

  r = test::run_cli("run --model test-org/stories260K " + std::string(kPrompt), env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(hub.requests().size(), first.size()) << "the second run asked the Hub again";
  // tokenize finds it too, and `lens download` of a tag reuses every blob (metadata requests only).
  r = test::run_cli("tokenize --model test-org/stories260K 'Once upon'", env(hub));
  EXPECT_EQ(r.code, 0) << r.err;
  r = test::run_cli("download test-org/stories260K --revision v1.0", env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, snap.string() + "\n");
  EXPECT_EQ(slurp(repo_dir() / "refs" / "v1.0"), sha);
  const auto after = hub.requests();
  EXPECT_EQ(count(after, "storage"), count(first, "storage"));
  for (size_t i = first.size(); i < after.size(); ++i) {
    const bool api = after[i]["path"].get<std::string>().rfind("/api/", 0) == 0;
    EXPECT_TRUE(after[i]["method"] == "HEAD" || api) << after[i].dump();
  }
}

TEST_F(Download, ShardedCheckpointFetchesIndexAndShards) {
  REQUIRE_FAKE_HUB(hub);
  test::CliResult r = test::run_cli("run --model test-org/stories260K-sharded " + std::string(kPrompt), env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path snap = nlohmann::json::parse(r.out)["model"]["path"].get<std::string>();
  for (const char* f : {"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
    EXPECT_TRUE(fs::exists(snap / f)) << f;
  EXPECT_FALSE(fs::exists(snap / "model.safetensors"));
  test::CliResult local = test::run_cli("run --model " + shared_stories().string() + " " + kPrompt);
  ASSERT_EQ(local.code, 0) << local.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["layers"], nlohmann::json::parse(local.out)["layers"]);
}

TEST_F(Download, InterruptedDownloadResumes) {
  REQUIRE_FAKE_HUB(hub);
  hub.configure({{"drop_after", 300000}, {"drop_count", 1}});
  test::CliResult r = test::run_cli("download test-org/stories260K", env(hub));
  ASSERT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("interrupted after"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("run the same command again to resume"), std::string::npos) << r.err;
  const std::string sha = "407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd";
  const fs::path partial = repo_dir() / "blobs" / (sha + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), 300000u);
  // Nothing in snapshots/ names the unfinished file, and no config.json says the snapshot is whole.
  for (const auto& e : fs::recursive_directory_iterator(repo_dir() / "snapshots")) {
    EXPECT_NE(e.path().filename(), "model.safetensors");
    EXPECT_NE(e.path().filename(), "config.json");
  }
  r = test::run_cli("run --model test-org/stories260K " + std::string(kPrompt), env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming model.safetensors"), std::string::npos) << r.err;
  bool ranged = false;
  for (const auto& q : hub.requests()) ranged |= q["range"] == "bytes=300000-";
  EXPECT_TRUE(ranged) << "the second call did not resume with a Range request";
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(slurp(repo_dir() / "blobs" / sha), slurp(shared_stories() / "model.safetensors"));
}

TEST_F(Download, CtrlCLeavesResumableFile) {
  REQUIRE_FAKE_HUB(hub);
  hub.configure({{"throttle_bps", 200000}});  // model.safetensors takes ~5 s
  // Spawned directly (not through a shell, whose background jobs ignore SIGINT), with the test env.
  std::vector<std::string> vars = {"HF_ENDPOINT=" + hub.endpoint(), "HF_HUB_CACHE=" + cache().string(),
                                   "HF_HOME=" + (home_ / "hf").string(), "HOME=" + home_.string(), "HF_TOKEN=",
                                   "HF_TOKEN_PATH=", "HF_HUB_OFFLINE=0", "PATH=/usr/bin:/bin"};
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  const char* argv[] = {LENS_BINARY, "download", "-q", "test-org/stories260K", nullptr};
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, LENS_BINARY, nullptr, nullptr, const_cast<char**>(argv), envp.data()), 0);
  const std::string sha = "407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd";
  const fs::path partial = repo_dir() / "blobs" / (sha + ".incomplete");
  std::error_code ec;
  for (int i = 0; i < 400 && !(fs::exists(partial, ec) && fs::file_size(partial, ec) > 100000); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "lens finished before Ctrl-C; status " << status;
  ASSERT_TRUE(fs::exists(partial));
  const auto kept = fs::file_size(partial);
  EXPECT_GT(kept, 100000u);
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / sha));
  hub.configure(nlohmann::json::object());
  test::CliResult r = test::run_cli("download test-org/stories260K", env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  bool ranged = false;
  for (const auto& q : hub.requests()) ranged |= q["range"] == "bytes=" + std::to_string(kept) + "-";
  EXPECT_TRUE(ranged) << "no Range request from byte " << kept;
  EXPECT_EQ(slurp(repo_dir() / "blobs" / sha), slurp(shared_stories() / "model.safetensors"));
}

TEST_F(Download, CorruptBytesAreDetected) {
  REQUIRE_FAKE_HUB(hub);
  hub.configure({{"corrupt", true}});
  test::CliResult r = test::run_cli("run --model test-org/stories260K " + std::string(kPrompt), env(hub));
  ASSERT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  for (const auto& e : fs::recursive_directory_iterator(repo_dir())) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n != "model.safetensors" && n != "tokenizer.model" && n != "config.json") << e.path();
    EXPECT_EQ(n.find(".incomplete"), std::string::npos) << e.path();
  }
  hub.configure({{"corrupt", false}});
  r = test::run_cli("download -q test-org/stories260K", env(hub));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // -q: no progress
}

TEST_F(Download, GatedRepoNeedsToken) {
  REQUIRE_FAKE_HUB(hub);
  test::CliResult r = test::run_cli("download test-org/gated-stories260K", env(hub));
  ASSERT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("accept the licence at " + hub.endpoint() + "/test-org/gated-stories260K and set HF_TOKEN"),
            std::string::npos)
      << r.err;
  // The token file under $HF_HOME counts as much as $HF_TOKEN; it never reaches the storage host.
  fs::create_directories(home_ / "hf");
  std::ofstream(home_ / "hf" / "token") << "hf_test_token\n";
  r = test::run_cli("download test-org/gated-stories260K", env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  size_t authed = 0;
  for (const auto& q : hub.requests()) {
    if (q["server"] == "storage") {
      EXPECT_FALSE(q["auth"].get<bool>()) << q.dump();
    }
    authed += q["server"] == "hub" && q["auth"].get<bool>();
  }
  EXPECT_GT(authed, 0u);
}

TEST_F(Download, MissingRepoRevisionFileAndPickleOnly) {
  REQUIRE_FAKE_HUB(hub);
  struct Case {
    std::string args;
    int code;
    std::string message;
  };
  hub.configure({{"missing_files", {"tokenizer.model"}}});
  for (const Case& c : std::vector<Case>{
           {"run --model test-org/nope --token-ids 1", 4, "test-org/nope: repository not found on " + hub.endpoint()},
           {"run --model test-org/stories260K@nope --token-ids 1", 4, "revision 'nope' not found"},
           {"download test-org/stories260K", 4, "no file 'tokenizer.model' at revision 'main'"},
           {"download test-org/bin-only", 4, "lens needs safetensors"},
       }) {
    test::CliResult r = test::run_cli(c.args, env(hub));
    EXPECT_EQ(r.code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
  // The missing file was found missing before any byte was written.
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots"));
}

TEST_F(Download, OfflineUsesCacheOnly) {
  REQUIRE_FAKE_HUB(hub);
  test::CliResult r = test::run_cli("run --model test-org/stories260K --token-ids 1,2", env(hub, "HF_HUB_OFFLINE=1"));
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("HF_HUB_OFFLINE"), std::string::npos) << r.err;
  r = test::run_cli("download test-org/stories260K", env(hub, "HF_HUB_OFFLINE=1"));
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_TRUE(hub.requests().empty());
  r = test::run_cli("download -q test-org/stories260K", env(hub));
  ASSERT_EQ(r.code, 0) << r.err;
  const size_t n = hub.requests().size();
  r = test::run_cli("run --model test-org/stories260K@v1.0 --token-ids 1,2", env(hub, "HF_HUB_OFFLINE=1"));
  EXPECT_NE(r.code, 0) << "v1.0 was never downloaded, so offline it is unknown";
  r = test::run_cli("run --model test-org/stories260K@" + commit() + " --token-ids 1,2 --json", env(hub, "HF_HUB_OFFLINE=1"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(hub.requests().size(), n);
}

TEST_F(Download, ConcurrentDownloadsShareOneBlob) {
  REQUIRE_FAKE_HUB(hub);
  const std::string cmd = env(hub) + " " + LENS_BINARY + " download -q test-org/stories260K";
  const std::string sh = "(" + cmd + " >/dev/null & " + cmd + " >/dev/null; a=$?; wait $!; b=$?; exit $((a + b)))";
  EXPECT_EQ(std::system(("sh -c '" + sh + "'").c_str()), 0);
  const fs::path blob = repo_dir() / "blobs" / "407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd";
  EXPECT_EQ(slurp(blob), slurp(shared_stories() / "model.safetensors"));
  // The lock serialises the two: the weights cross the wire once.
  size_t gets = 0;
  for (const auto& q : hub.requests())
    gets += q["server"] == "storage" && q["path"].get<std::string>().find("407a7c58") != std::string::npos;
  EXPECT_EQ(gets, 1u);
}

}  // namespace
}  // namespace lens
