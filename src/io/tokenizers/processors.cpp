// HF `processors` (post-processors) for one sequence: TemplateProcessing, RobertaProcessing, BertProcessing,
// ByteLevel (offsets only: nothing to do) and Sequences of them, as special-token ids before and after the
// text. Not here: pairs of sequences, type ids.
#include "io/tokenizers/pipeline.h"
#include "lens/error.h"

namespace lens::tok {

void parse_post_processor(const json& p, const std::string& where, Impl& m) {
  if (p.is_null()) return;
  if (!p.is_object()) throw ModelError(where + ": post_processor must be an object or null");
  const std::string type = json_string(p, "type", where + ": post_processor");
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type == "Sequence") {
    if (!p.contains("processors") || !p["processors"].is_array()) {
      throw ModelError(where + ": Sequence post_processor without a \"processors\" list");
    }
    for (const json& q : p["processors"]) parse_post_processor(q, where, m);
    return;
  }
  if (type == "TemplateProcessing") {
    const std::string w = where + ": TemplateProcessing";
    if (!p.contains("single") || !p["single"].is_array())
      throw ModelError(w + ": missing \"single\" template");
    const json specials = p.value("special_tokens", json::object());
    Template t;
    bool seen_sequence = false;
    for (const json& item : p["single"]) {
      if (item.contains("Sequence")) {
        if (item["Sequence"].value("id", "A") == "A") seen_sequence = true;
        continue;
      }
      if (!item.contains("SpecialToken")) throw ModelError(w + ": unknown template item " + item.dump());
      const std::string name = json_string(item["SpecialToken"], "id", w);
      if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
        throw ModelError(w + ": special token '" + name + "' is not in \"special_tokens\"");
      }
      for (const json& id : specials[name]["ids"])
        (seen_sequence ? t.after : t.before).push_back(json_id(id, w));
    }
    m.templates.push_back(std::move(t));
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const std::string w = where + ": " + type;
    auto pair_id = [&](const char* key) {
      if (!p.contains(key) || !p[key].is_array() || p[key].size() != 2) {
        throw ModelError(w + ": \"" + key + "\" must be [token, id]");
      }
      return json_id(p[key][1], w);
    };
    m.templates.push_back(Template{{pair_id("cls")}, {pair_id("sep")}});
    return;
  }
  throw ModelError(
      where + ": unsupported post_processor type '" + type +
      "' (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
}

}  // namespace lens::tok
