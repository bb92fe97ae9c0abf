// JSON encoding of lens results (nlohmann to_json/from_json). Field names are the documented
// schema (README.md "JSON output"); change them only together with schema_version.
#include "lens/output.h"

namespace lens {

using nlohmann::json;

void to_json(json& j, const RuntimeInfo& v) {
  j = json{{"threads", v.threads}, {"threads_from", v.threads_from}, {"omp_wait", v.omp_wait},
           {"omp_wait_from", v.omp_wait_from}};
}

void to_json(json& j, const TokenProb& v) { j = json{{"id", v.id}, {"prob", v.prob}, {"logit", v.logit}}; }
void to_json(json& j, const TokenRank& v) { j = json{{"id", v.id}, {"rank", v.rank}, {"prob", v.prob}}; }

void to_json(json& j, const PositionStats& v) {
  j = json{{"pos", v.pos}, {"entropy", v.entropy}, {"kl_to_final", v.kl_to_final},
           {"top", v.top},  {"final_top1", v.final_top1}};
  if (!v.targets.empty()) j["targets"] = v.targets;
}

void to_json(json& j, const LayerStats& v) {
  j = json{{"layer", v.layer}, {"name", v.name}, {"positions", v.positions}};
}

void from_json(const json& j, TokenProb& v) {
  j.at("id").get_to(v.id);
  j.at("prob").get_to(v.prob);
  v.logit = j.value("logit", 0.0);
}

void from_json(const json& j, TokenRank& v) {
  j.at("id").get_to(v.id);
  j.at("rank").get_to(v.rank);
  j.at("prob").get_to(v.prob);
}

void from_json(const json& j, PositionStats& v) {
  j.at("pos").get_to(v.pos);
  j.at("entropy").get_to(v.entropy);
  j.at("kl_to_final").get_to(v.kl_to_final);
  j.at("top").get_to(v.top);
  if (j.contains("final_top1")) j.at("final_top1").get_to(v.final_top1);
  if (j.contains("targets")) j.at("targets").get_to(v.targets);
}

void from_json(const json& j, LayerStats& v) {
  j.at("layer").get_to(v.layer);
  j.at("name").get_to(v.name);
  j.at("positions").get_to(v.positions);
}

namespace {

// Adds "token" display text next to every "id" inside top / final_top1 / targets.
json layers_json(const std::vector<LayerStats>& layers, const TokenNamer& namer) {
  json out = layers;
  for (auto& layer : out) {
    for (auto& pos : layer["positions"]) {
      for (auto& t : pos["top"]) t["token"] = namer(t["id"].get<int64_t>());
      pos["final_top1"]["token"] = namer(pos["final_top1"]["id"].get<int64_t>());
      if (pos.contains("targets"))
        for (auto& t : pos["targets"]) t["token"] = namer(t["id"].get<int64_t>());
    }
  }
  return out;
}

}  // namespace

json run_document_json(const RunDocument& doc, const TokenNamer& namer) {
  json j;
  j["schema_version"] = kSchemaVersion;
  const auto& m = doc.model;
  j["model"] = {{"name", m.name},       {"path", m.path},       {"architecture", m.architecture},
                {"n_layer", m.n_layer}, {"d_model", m.d_model}, {"n_head", m.n_head},
                {"vocab_size", m.vocab_size}, {"dtype", m.dtype}};
  // Keys of config.json that lens neither implements nor knows to be harmless (README "Config keys").
  j["config"] = {{"ignored_keys", m.ignored_config_keys}};
  if (doc.prompt) j["prompt"] = *doc.prompt;
  j["tokens"] = json::array();
  for (const auto& t : doc.tokens) j["tokens"].push_back({{"id", t.id}, {"text", t.text}});
  if (doc.runtime) j["runtime"] = *doc.runtime;
  if (doc.lenses.empty()) return j;
  const LensResult& first = doc.lenses.front();
  j["lens"] = first.lens;
  j["final_check"] = {{"max_abs_diff", first.final_max_abs_diff},
                      {"tolerance", first.final_tolerance},
                      {"ok", first.final_ok}};
  j["layers"] = layers_json(first.layers, namer);
  if (doc.lenses.size() > 1) {
    j["lenses"] = json::object();
    for (const auto& r : doc.lenses) j["lenses"][r.lens] = layers_json(r.layers, namer);
  }
  return j;
}

std::string dump_json(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace lens
