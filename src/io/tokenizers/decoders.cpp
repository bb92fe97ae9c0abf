// HF `decoders`: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequences of them, each applied
// to the whole list of token strings (Decoder::decode_chain). Not here: WordPiece, BPEDecoder, CTC (refused by
// name).
#include <cctype>

#include "io/tokenizers/pipeline.h"
#include "io/tokenizers/unicode.h"
#include "lens/error.h"

namespace lens::tok {

// HF's decoders, each on the whole list of token strings (Decoder::decode_chain).
void apply_decoder(const DecodeStep& d, std::vector<std::string>& toks) {
  switch (d.kind) {
    case DecodeKind::kByteLevel: {  // all tokens' bytes, then one lossy UTF-8 string
      std::string bytes;
      for (const std::string& t : toks) bytes += byte_level_to_bytes(t);
      toks.assign(1, sanitize_utf8(bytes));
      break;
    }
    case DecodeKind::kReplace:
      for (std::string& t : toks) t = replace_all(*d.pattern, d.content, t);
      break;
    case DecodeKind::kByteFallback: {  // runs of <0xNN> become their bytes, or one U+FFFD per byte
      std::vector<std::string> out;
      std::string run;
      size_t n_run = 0;
      auto flush = [&] {
        if (n_run == 0) return;
        if (is_valid_utf8(run)) {
          out.push_back(run);
        } else {
          for (size_t k = 0; k < n_run; ++k) out.emplace_back("\xEF\xBF\xBD");
        }
        run.clear();
        n_run = 0;
      };
      for (std::string& t : toks) {
        const bool is_byte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
                             std::isxdigit(static_cast<unsigned char>(t[3])) &&
                             std::isxdigit(static_cast<unsigned char>(t[4]));
        if (is_byte) {
          run += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
          ++n_run;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      toks.swap(out);
      break;
    }
    case DecodeKind::kFuse: {
      std::string all;
      for (const std::string& t : toks) all += t;
      toks.assign(1, all);
      break;
    }
    case DecodeKind::kStrip:
      for (std::string& t : toks) {
        size_t b = 0, e = t.size();
        for (int k = 0; k < d.start && t.compare(b, d.content.size(), d.content) == 0 && b < e; ++k)
          b += d.content.size();
        for (int k = 0; k < d.stop && e >= b + d.content.size() &&
                        t.compare(e - d.content.size(), d.content.size(), d.content) == 0;
             ++k)
          e -= d.content.size();
        t = t.substr(b, e - b);
      }
      break;
    case DecodeKind::kMetaspace:
      for (size_t i = 0; i < toks.size(); ++i) {
        std::string r;
        for (size_t k = 0; k < toks[i].size();) {
          if (toks[i].compare(k, d.content.size(), d.content) == 0) {
            r += ' ';
            k += d.content.size();
          } else {
            r += toks[i][k++];
          }
        }
        if (i == 0 && d.prepend && !r.empty() && r[0] == ' ') r.erase(0, 1);
        toks[i] = std::move(r);
      }
      break;
  }
}

void parse_decoder_step(const json& d, const std::string& where, std::vector<DecodeStep>& steps) {
  if (!d.is_object()) throw ModelError(where + ": decoder must be an object");
  const std::string type = json_string(d, "type", where + ": decoder");
  const std::string w = where + ": " + type + " decoder";
  DecodeStep s;
  if (type == "Sequence") {
    if (!d.contains("decoders") || !d["decoders"].is_array())
      throw ModelError(w + ": no \"decoders\" list");
    for (const json& q : d["decoders"]) parse_decoder_step(q, where, steps);
    return;
  } else if (type == "ByteLevel") {
    s.kind = DecodeKind::kByteLevel;
  } else if (type == "Replace") {
    s.kind = DecodeKind::kReplace;
    const json pattern = d.value("pattern", json());
    if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
      s.pattern = std::make_shared<Regex>(pattern["Regex"].get<std::string>(), false, w);
    } else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string() &&
               !pattern["String"].get<std::string>().empty()) {
      s.pattern = std::make_shared<Regex>(pattern["String"].get<std::string>(), true, w);
    } else {
      throw ModelError(w + ": needs a pattern {\"Regex\": ...} or a non-empty {\"String\": ...}");
    }
    s.content = json_string(d, "content", w);
  } else if (type == "ByteFallback") {
    s.kind = DecodeKind::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = DecodeKind::kFuse;
  } else if (type == "Strip") {
    s.kind = DecodeKind::kStrip;
    s.content = json_string(d, "content", w);
    auto count = [&](const char* key) {
      if (!d.contains(key) || !d[key].is_number_integer() || d[key].get<int64_t>() < 0 ||
          d[key].get<int64_t>() > 1024)
        throw ModelError(w + ": \"" + key + "\" must be a small non-negative integer");
      return static_cast<int>(d[key].get<int64_t>());
    };
    s.start = count("start");
    s.stop = count("stop");
  } else if (type == "Metaspace") {
    s.kind = DecodeKind::kMetaspace;
    s.content = d.contains("replacement") ? json_string(d, "replacement", w) : "\xE2\x96\x81";
    if (s.content.empty()) throw ModelError(w + ": empty replacement");
    if (d.contains("prepend_scheme")) {
      s.prepend = json_string(d, "prepend_scheme", w) != "never";
    } else {
      s.prepend = json_bool(d, "add_prefix_space", true, w);
    }
  } else {
    throw ModelError(where + ": unsupported decoder type '" + type +
                     "' (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
  }
  steps.push_back(std::move(s));
}

void parse_decoder(const json& d, const std::string& where, Impl& m) {
  if (d.is_null()) {
    m.has_decoder = false;
    return;
  }
  parse_decoder_step(d, where, m.decoder);
}

}  // namespace lens::tok
