// Comparison of two lens outputs (see lens/compare.h). Works on the saved JSON only (and the
// log-prob sidecars it references), never on a model, so a baseline recorded once can be checked
// against any later build.
#include "lens/compare.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "lens/error.h"
#include "lens/safetensors.h"

namespace lens {

using nlohmann::json;
namespace fs = std::filesystem;

void DiffStats::add(const DiffStats& o) {
  cells += o.cells;
  top1_agree += o.top1_agree;
  topk_overlap_sum += o.topk_overlap_sum;
  kl_sum += o.kl_sum;
  kl_max = std::max(kl_max, o.kl_max);
}

Tolerances read_tolerances(const fs::path& path, Tolerances base) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read tolerances file " + path.string());
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw InputError(path.string() + ": not JSON: " + e.what());
  }
  if (!j.is_object()) throw InputError(path.string() + ": expected a JSON object of tolerances");
  const std::map<std::string, double*> fields = {{"min_top1_agreement", &base.min_top1_agreement},
                                                 {"min_topk_overlap", &base.min_topk_overlap},
                                                 {"max_kl", &base.max_kl},
                                                 {"max_mean_kl", &base.max_mean_kl}};
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto f = fields.find(it.key());
    if (f == fields.end())
      throw InputError(path.string() + ": unknown tolerance '" + it.key() +
                       "' (known: min_top1_agreement, min_topk_overlap, max_kl, max_mean_kl)");
    if (!it.value().is_number()) throw InputError(path.string() + ": '" + it.key() + "' must be a number");
    *f->second = it.value().get<double>();
  }
  return base;
}

std::vector<json> read_records(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A single document (possibly pretty-printed) first; otherwise one object per line.
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw InputError(path.string() + ": expected a JSON object");
    return {j};
  } catch (const json::exception&) {
  }
  std::vector<json> out;
  std::istringstream lines(text);
  std::string line;
  int64_t n = 0;
  while (std::getline(lines, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception& e) {
      throw InputError(path.string() + ":" + std::to_string(n) + ": not a JSON record (" + e.what() + ")");
    }
    if (!out.back().is_object()) throw InputError(path.string() + ":" + std::to_string(n) + ": not a JSON object");
  }
  if (!text.empty() && text.back() != '\n')
    throw InputError(path.string() + ": the last line is incomplete (an interrupted run? finish it with --resume)");
  if (out.empty()) throw InputError(path.string() + ": no records");
  return out;
}

namespace {

struct Top {
  std::vector<int64_t> ids;
  std::vector<double> probs;
};

Top read_top(const json& pos) {
  Top t;
  for (const auto& e : pos.at("top")) {
    t.ids.push_back(e.at("id").get<int64_t>());
    t.probs.push_back(e.at("prob").get<double>());
  }
  return t;
}

// KL(a || b) estimated from top-k lists: over the union of both lists plus one "other" bucket.
// A token missing from one side's list gets min(its smallest listed prob, remaining mass / (m+1))
// there (m = tokens it misses), the rest of its remaining mass goes to "other". This is the KL of
// a coarsened pair of distributions: it never sees differences inside the tails, so it tends to
// underestimate; exact KL needs --store-logprobs.
double approx_kl(const Top& a, const Top& b) {
  std::vector<int64_t> uni = a.ids;
  for (int64_t id : b.ids)
    if (std::find(uni.begin(), uni.end(), id) == uni.end()) uni.push_back(id);
  auto coarse = [&uni](const Top& t) {
    double listed = 0, smallest = 1;
    for (double p : t.probs) {
      listed += p;
      smallest = std::min(smallest, p);
    }
    const double rest = std::max(0.0, 1.0 - listed);
    size_t missing = 0;
    for (int64_t id : uni) missing += std::find(t.ids.begin(), t.ids.end(), id) == t.ids.end();
    const double guess = std::min(smallest, rest / static_cast<double>(missing + 1));
    std::vector<double> q;
    for (int64_t id : uni) {
      auto it = std::find(t.ids.begin(), t.ids.end(), id);
      q.push_back(it == t.ids.end() ? guess : t.probs[static_cast<size_t>(it - t.ids.begin())]);
    }
    q.push_back(rest - guess * static_cast<double>(missing));  // "other"
    return q;
  };
  const std::vector<double> p = coarse(a), q = coarse(b);
  constexpr double kFloor = 1e-12;  // keeps log finite when a bucket is empty on one side
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) kl += p[i] * std::log(std::max(p[i], kFloor) / std::max(q[i], kFloor));
  return std::max(0.0, kl);
}

// Opens each sidecar once.
class SidecarCache {
 public:
  at::Tensor get(const fs::path& json_file, const json& rec) {
    const fs::path file = json_file.parent_path() / rec.at("logprobs").at("file").get<std::string>();
    auto it = files_.find(file.string());
    if (it == files_.end()) {
      try {
        it = files_.emplace(file.string(), SafeTensorsFile::open(file)).first;
      } catch (const Error& e) {
        throw InputError(json_file.string() + ": log-prob sidecar: " + e.what());
      }
    }
    const std::string name = rec.at("logprobs").at("tensor").get<std::string>();
    if (it->second->find(name) == nullptr) throw InputError(file.string() + ": no tensor '" + name + "'");
    return it->second->tensor(name);
  }

 private:
  std::map<std::string, std::shared_ptr<SafeTensorsFile>> files_;
};

std::string where(const fs::path& path, const json& rec) {
  return path.string() + " record " + std::to_string(rec.value("index", int64_t{0}));
}

void check_same_model(const json& a, const json& b, const std::string& what) {
  for (const char* k : {"architecture", "n_layer", "d_model", "n_head", "vocab_size"})
    if (a.at("model").value(k, json()) != b.at("model").value(k, json()))
      throw InputError(what + ": different models (" + k + " " + a.at("model").value(k, json()).dump() + " vs " +
                       b.at("model").value(k, json()).dump() + ")");
}

RecordDiff compare_record(const fs::path& pa, const json& a, const fs::path& pb, const json& b,
                          SidecarCache& cache) {
  RecordDiff d;
  d.index = a.value("index", int64_t{0});
  d.id = a.value("id", json());
  const std::string what = where(pb, b);
  if (a.contains("error") || b.contains("error")) {
    if (a.contains("error") && b.contains("error")) {
      if (a["error"].value("code", "") != b["error"].value("code", ""))
        d.problems.push_back("fails differently: " + a["error"].value("code", "") + " vs " + b["error"].value("code", ""));
    } else if (a.contains("error")) {
      d.problems.push_back("failed in the baseline (" + a["error"].value("code", "") + ") but runs now");
    } else {
      d.problems.push_back("fails now: " + b["error"].value("message", std::string()));
    }
    return d;
  }
  try {
    check_same_model(a, b, what);
    std::vector<int64_t> ta, tb;
    for (const auto& t : a.at("tokens")) ta.push_back(t.at("id").get<int64_t>());
    for (const auto& t : b.at("tokens")) tb.push_back(t.at("id").get<int64_t>());
    if (ta != tb || a.value("prompt", json()) != b.value("prompt", json()))
      throw InputError(what + ": different prompts (token ids differ)");
    if (a.value("lens", "") != b.value("lens", ""))
      throw InputError(what + ": different lenses (" + a.value("lens", "") + " vs " + b.value("lens", "") + ")");
    const json& la = a.at("layers");
    const json& lb = b.at("layers");
    if (la.size() != lb.size()) throw InputError(what + ": different layers");
    at::Tensor lpa, lpb;  // (L, P, V) when both sides stored log-probs
    d.exact_kl = a.contains("logprobs") && b.contains("logprobs");
    if (d.exact_kl) {
      lpa = cache.get(pa, a).to(at::kFloat);
      lpb = cache.get(pb, b).to(at::kFloat);
      if (lpa.sizes() != lpb.sizes() || lpa.dim() != 3 || lpa.size(0) != static_cast<int64_t>(la.size()))
        throw InputError(what + ": log-prob sidecars have different shapes");
    }
    for (size_t li = 0; li < la.size(); ++li) {
      LayerDiff ld;
      ld.layer = la[li].at("layer").get<int64_t>();
      if (lb[li].at("layer").get<int64_t>() != ld.layer) throw InputError(what + ": different layers");
      const json& pa_ = la[li].at("positions");
      const json& pb_ = lb[li].at("positions");
      if (pa_.size() != pb_.size()) throw InputError(what + ": different positions");
      at::Tensor kl_exact;
      if (d.exact_kl) {
        if (lpa.size(1) != static_cast<int64_t>(pa_.size()))
          throw InputError(what + ": log-prob sidecar does not match the positions");
        at::Tensor x = lpa[static_cast<int64_t>(li)], y = lpb[static_cast<int64_t>(li)];  // (P, V)
        kl_exact = (x.exp() * (x - y)).sum(-1).to(at::kDouble).contiguous();           // (P)
      }
      for (size_t pi = 0; pi < pa_.size(); ++pi) {
        if (pa_[pi].at("pos") != pb_[pi].at("pos")) throw InputError(what + ": different positions");
        const Top x = read_top(pa_[pi]), y = read_top(pb_[pi]);
        if (x.ids.empty() || y.ids.empty()) throw InputError(what + ": a cell without top tokens");
        const size_t k = std::min(x.ids.size(), y.ids.size());
        size_t common = 0;
        for (size_t i = 0; i < k; ++i)
          common += std::find(y.ids.begin(), y.ids.begin() + static_cast<int64_t>(k), x.ids[i]) !=
                    y.ids.begin() + static_cast<int64_t>(k);
        const double kl = d.exact_kl ? std::max(0.0, kl_exact.data_ptr<double>()[pi]) : approx_kl(x, y);
        ld.stats.cells += 1;
        ld.stats.top1_agree += x.ids[0] == y.ids[0];
        ld.stats.topk_overlap_sum += static_cast<double>(common) / static_cast<double>(k);
        ld.stats.kl_sum += kl;
        ld.stats.kl_max = std::max(ld.stats.kl_max, kl);
      }
      d.stats.add(ld.stats);
      d.layers.push_back(ld);
    }
  } catch (const json::exception& e) {
    throw InputError(what + ": not a lens output record (" + e.what() + ")");
  }
  return d;
}

}  // namespace

CompareReport compare_files(const fs::path& baseline, const fs::path& current, const Tolerances& tol) {
  CompareReport r;
  r.baseline = baseline.string();
  r.current = current.string();
  r.tolerances = tol;
  auto index = [](const fs::path& p) {
    std::map<int64_t, json> m;
    for (auto& rec : read_records(p)) {
      const int64_t i = rec.value("index", int64_t{0});
      if (!m.emplace(i, std::move(rec)).second)
        throw InputError(p.string() + ": record " + std::to_string(i) + " appears twice");
    }
    return m;
  };
  const std::map<int64_t, json> a = index(baseline), b = index(current);
  for (const auto& [i, rec] : a)
    if (!b.count(i)) throw InputError(current.string() + ": no record " + std::to_string(i) + " (the baseline has it)");
  for (const auto& [i, rec] : b)
    if (!a.count(i)) throw InputError(baseline.string() + ": no record " + std::to_string(i) + " (the current run has it)");
  SidecarCache cache;
  r.exact_kl = true;
  int64_t failed = 0;
  for (const auto& [i, rec] : a) {
    const json& other = b.at(i);
    if (rec.contains("model") && other.contains("model")) check_same_model(rec, other, where(current, other));
    RecordDiff d = compare_record(baseline, rec, current, other, cache);
    if (d.stats.cells > 0) r.exact_kl = r.exact_kl && d.exact_kl;
    failed += !d.problems.empty();
    r.stats.add(d.stats);
    r.records.push_back(std::move(d));
  }
  if (r.stats.cells == 0) r.exact_kl = false;
  auto fmt = [](double v) {
    std::ostringstream s;
    s.precision(4);
    s << v;
    return s.str();
  };
  if (failed > 0) r.drift.push_back(std::to_string(failed) + " record(s) fail on one side only or differently");
  if (r.stats.top1_agreement() < tol.min_top1_agreement)
    r.drift.push_back("top-1 agreement " + fmt(r.stats.top1_agreement()) + " < " + fmt(tol.min_top1_agreement));
  if (r.stats.topk_overlap() < tol.min_topk_overlap)
    r.drift.push_back("top-k overlap " + fmt(r.stats.topk_overlap()) + " < " + fmt(tol.min_topk_overlap));
  if (r.stats.kl_max > tol.max_kl)
    r.drift.push_back("max KL " + fmt(r.stats.kl_max) + " nats > " + fmt(tol.max_kl));
  if (r.stats.kl_mean() > tol.max_mean_kl)
    r.drift.push_back("mean KL " + fmt(r.stats.kl_mean()) + " nats > " + fmt(tol.max_mean_kl));
  return r;
}

namespace {

json stats_json(const DiffStats& s) {
  return json{{"cells", s.cells},
              {"top1_agreement", s.top1_agreement()},
              {"topk_overlap", s.topk_overlap()},
              {"kl_mean", s.kl_mean()},
              {"kl_max", s.kl_max}};
}

}  // namespace

json report_json(const CompareReport& r) {
  json j;
  j["schema_version"] = 1;
  j["baseline"] = r.baseline;
  j["current"] = r.current;
  j["tolerances"] = {{"min_top1_agreement", r.tolerances.min_top1_agreement},
                     {"min_topk_overlap", r.tolerances.min_topk_overlap},
                     {"max_kl", r.tolerances.max_kl},
                     {"max_mean_kl", r.tolerances.max_mean_kl}};
  j["ok"] = r.ok();
  j["drift"] = r.drift;
  j["kl"] = r.exact_kl ? "exact" : "top-k estimate";
  j["totals"] = stats_json(r.stats);
  j["records"] = json::array();
  for (const auto& d : r.records) {
    json rec = {{"index", d.index}, {"id", d.id}, {"kl", d.exact_kl ? "exact" : "top-k estimate"}};
    rec["totals"] = stats_json(d.stats);
    rec["layers"] = json::array();
    for (const auto& l : d.layers) {
      json lj = stats_json(l.stats);
      lj["layer"] = l.layer;
      rec["layers"].push_back(lj);
    }
    if (!d.problems.empty()) rec["problems"] = d.problems;
    j["records"].push_back(rec);
  }
  return j;
}

}  // namespace lens
