// `lens run --attention` and `lens view`: the exported patterns are causal, rows sum to 1 and match
// transformers' output_attentions (eager) on the parity fixtures; the sink report is consistent
// with the patterns; sidecar export round-trips; the page and SVG are written.
// Tolerance 1e-3 on exported weights: they are stored as float16 (relative error 2^-11 ~ 4.9e-4
// on values <= 1), on top of the 1e-6-level float32 differences of the parity tests.
#include <filesystem>

#include "cli_util.h"
#include "lens/attention.h"
#include "lens/safetensors.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

TEST(Attention, InlineExportMatchesTransformers) {
  for (const std::string name : {"tiny-gpt2", "tiny-llama"}) {
    const auto dir = test::fixtures_dir() / name;
    const auto ref = test::read_json(dir / "reference.json");
    std::string ids;
    for (const auto& id : ref["input_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int64_t>());
    test::CliResult r = test::run_cli("run --model " + dir.string() + " --token-ids " + ids + " --attention --json -q");
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    const auto& a = j["attention"];
    ASSERT_EQ(a["layers"].size(), 3u);
    at::Tensor got = test::json_tensor(a["patterns"]);  // (L, H, T, T)
    at::Tensor want = test::json_tensor(ref["attentions"]);
    const double d = test::max_abs_diff(got, want);
    std::printf("%s exported attention vs transformers output_attentions: max |diff| = %.3g\n", name.c_str(), d);
    EXPECT_LE(d, 1e-3);
    EXPECT_LE((got.sum(-1) - 1).abs().max().item<double>(), 1e-2);  // float16 rows of up to 11 terms
    EXPECT_EQ(got.triu(1).abs().max().item<double>(), 0.0);
    // Sink numbers are the patterns' own statistics.
    for (const auto& s : a["sinks"]) {
      const int64_t l = s["layer"], h = s["head"];
      const double bos = want[l][h].select(1, 0).narrow(0, 1, want.size(2) - 1).mean().item<double>();
      EXPECT_NEAR(s["bos_mass"].get<double>(), bos, 1e-5);
      EXPECT_EQ(s["sink"].get<bool>(), bos >= 0.5);
    }
  }
}

TEST(Attention, SinkReportFlagsHeadsOnToken0) {
  // Head 0 puts all weight on token 0; head 1 on the previous token; head 2 is uniform.
  const int64_t T = 5;
  at::Tensor p = at::zeros({3, T, T});
  for (int64_t q = 0; q < T; ++q) {
    p[0][q][0] = 1;
    p[1][q][std::max<int64_t>(q - 1, 0)] = 1;
    for (int64_t k = 0; k <= q; ++k) p[2][q][k] = 1.0 / (q + 1);
  }
  auto s = attention_sinks(7, {0, 1, 2}, p, 0.5);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_TRUE(s[0].sink);
  EXPECT_DOUBLE_EQ(s[0].bos_mass, 1.0);
  EXPECT_NEAR(s[0].entropy, 0.0, 1e-6);
  EXPECT_FALSE(s[1].sink);
  EXPECT_DOUBLE_EQ(s[1].prev_mass, 1.0);
  EXPECT_FALSE(s[2].sink);
  EXPECT_NEAR(s[2].bos_mass, (1.0 / 2 + 1.0 / 3 + 1.0 / 4 + 1.0 / 5) / 4, 1e-6);
  EXPECT_EQ(s[2].layer, 7);
}

TEST(Attention, SidecarViewAndSvg) {
  const fs::path tmp = test::temp_dir("attn");
  const fs::path out = tmp / "run.json";
  test::CliResult r = test::run_cli("run --model " + (test::fixtures_dir() / "tiny-llama").string() +
                                    " --token-ids 1,5,9,13,17,21 --attention --qk --attention-layers 0,2 "
                                    "--attention-format sidecar -q -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = test::read_json(out);
  ASSERT_EQ(j["attention"]["sidecar"], "run.attn.safetensors");
  EXPECT_EQ(j["attention"]["layers"], nlohmann::json({0, 2}));
  auto f = SafeTensorsFile::open(tmp / "run.attn.safetensors");
  EXPECT_EQ(f->find("blocks.2.attn.hook_pattern")->shape, (std::vector<int64_t>{4, 6, 6}));
  EXPECT_EQ(f->find("blocks.2.attn.hook_pattern")->dtype, "F16");
  EXPECT_EQ(f->find("blocks.0.attn.hook_k")->shape, (std::vector<int64_t>{4, 6, 8}));  // kv heads repeated per query head

  r = test::run_cli("view " + out.string() + " -o " + (tmp / "page.html").string() + " --svg " + (tmp / "map.svg").string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(tmp / "page.html");
  std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(page.find("lensRegisterAttn"), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos);  // offline: no network references
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_TRUE(fs::exists(tmp / "map.svg"));

  // Without its sidecar the run cannot be viewed: a clear error, no page.
  fs::remove(tmp / "run.attn.safetensors");
  r = test::run_cli("view " + out.string() + " -o " + (tmp / "page2.html").string());
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("sidecar"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "page2.html"));
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace lens
