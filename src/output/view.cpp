// Writes the `lens view` HTML page and the static logit-lens SVG.
// The page = embedded template (src/output/view/, see cmake/embed.cmake) + the run JSON + quantised
// attention (pooled uint8 thumbnails inline; full uint8 lower-triangle patterns inline or in sibling
// files). It does not compute any lens statistics: everything shown comes from the run document.
#include "output/view.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "lens/error.h"
#include "output/embedded.h"

namespace lens {
namespace fs = std::filesystem;

namespace {

constexpr int kThumbCells = 32;  // thumbnails are at most kThumbCells x kThumbCells pooled cells

std::string base64(const std::uint8_t* data, std::size_t n) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < n) {
    std::uint32_t v = data[i] << 16;
    if (i + 1 < n) v |= data[i + 1] << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64(const std::vector<std::uint8_t>& v) { return base64(v.data(), v.size()); }

// Probabilities are stored as round(255 * sqrt(p)): a square-root scale keeps the small weights of
// long prompts (uniform attention over 1000 tokens is 1e-3, which a linear uint8 would round to 0).
std::uint8_t quantise_prob(float p) {
  p = std::min(std::max(p, 0.0f), 1.0f);
  return static_cast<std::uint8_t>(std::lround(255.0 * std::sqrt(p)));
}

// JSON for embedding in a <script> element: '<' (only ever inside strings) becomes \u003c, so neither
// "</script>" nor "<!--" can end or confuse the element. Invalid UTF-8 in token text becomes U+FFFD.
std::string json_for_script(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

void write_file_atomic(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("view: cannot open " + tmp.string() + " for writing");
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error("view: failed writing " + tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("view: cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  }
}

const EmbeddedFile& asset(const std::string& name) {
  for (std::size_t i = 0; i < kViewAssets_count; ++i)
    if (name == kViewAssets[i].name) return kViewAssets[i];
  throw Error("view: template file " + name + " was not embedded (check cmake/embed.cmake call)");
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void replace_once(std::string& s, const std::string& marker, const std::string& with) {
  std::size_t at = s.find(marker);
  if (at == std::string::npos) throw Error("view: template marker " + marker + " missing in index.html");
  s.replace(at, marker.size(), with);
}

void check_attention(const ViewAttention& a) {
  const std::size_t slots = a.layers.size() * static_cast<std::size_t>(a.n_head);
  const std::size_t tt = static_cast<std::size_t>(a.seq_len) * a.seq_len;
  auto fail = [](const std::string& what) { throw InputError("view: attention: " + what); };
  if (a.n_head <= 0 || a.seq_len <= 0) fail("n_head and seq_len must be positive");
  if (a.patterns.size() != slots)
    fail("expected " + std::to_string(slots) + " patterns (layers x heads), got " +
         std::to_string(a.patterns.size()));
  for (const auto& p : a.patterns)
    if (p.size() != tt) fail("pattern of " + std::to_string(p.size()) + " values, expected T*T = " +
                             std::to_string(tt));
  for (int l : a.layers)
    if (l < 0 || (a.n_layer > 0 && l >= a.n_layer)) fail("layer index " + std::to_string(l) + " out of range");
  if (a.queries.empty() != a.keys.empty()) fail("queries and keys must be given together");
  if (!a.queries.empty()) {
    if (a.d_head <= 0) fail("d_head must be positive when queries/keys are given");
    const std::size_t td = static_cast<std::size_t>(a.seq_len) * a.d_head;
    if (a.queries.size() != slots || a.keys.size() != slots) fail("queries/keys: expected one per layer x head");
    for (std::size_t i = 0; i < slots; ++i)
      if (a.queries[i].size() != td || a.keys[i].size() != td) fail("queries/keys: expected T*d_head values");
  }
}

// Mean-pools one (T, T) pattern to (S, S), then scales so the largest cell is 255 (sqrt scale, as above).
void pool_thumbnail(const std::vector<float>& p, int T, int S, std::vector<std::uint8_t>& out) {
  std::vector<double> cells(static_cast<std::size_t>(S) * S, 0.0);  // (S, S)
  for (int a = 0; a < S; ++a) {
    const int q0 = a * T / S, q1 = (a + 1) * T / S;
    for (int b = 0; b < S; ++b) {
      const int k0 = b * T / S, k1 = (b + 1) * T / S;
      double sum = 0.0;
      for (int q = q0; q < q1; ++q)
        for (int k = k0; k < k1; ++k) sum += p[static_cast<std::size_t>(q) * T + k];
      cells[static_cast<std::size_t>(a) * S + b] = sum / ((q1 - q0) * (k1 - k0));
    }
  }
  double max = *std::max_element(cells.begin(), cells.end());
  for (double c : cells) out.push_back(quantise_prob(max > 0 ? static_cast<float>(c / max) : 0.0f));
}

// int8 with one scale per head (max |x| / 127): q/k only feed the neuron view, which shows colours and
// a recomputed score, so 8 bits are plenty and keep a 1000-token layer at a few MB.
void quantise_vectors(const std::vector<float>& v, std::vector<std::uint8_t>& out, nlohmann::json& scales) {
  float max_abs = 0.0f;
  for (float x : v) max_abs = std::max(max_abs, std::fabs(x));
  const float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f;
  for (float x : v) out.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(std::lround(x / scale))));
  scales.push_back(scale);
}

// The body of attn_<layer>.js: one call of the page's registration function with this layer's data.
std::string layer_script(const ViewAttention& a, std::size_t layer_idx) {
  const int T = a.seq_len;
  std::vector<std::uint8_t> tri;  // per head: lower triangle, row q holds keys 0..q
  tri.reserve(static_cast<std::size_t>(a.n_head) * T * (T + 1) / 2);
  for (int h = 0; h < a.n_head; ++h) {
    const auto& p = a.patterns[layer_idx * a.n_head + h];
    for (int q = 0; q < T; ++q)
      for (int k = 0; k <= q; ++k) tri.push_back(quantise_prob(p[static_cast<std::size_t>(q) * T + k]));
  }
  std::string s = "lensRegisterAttn({\"layer\":" + std::to_string(a.layers[layer_idx]) + ",\"patterns\":\"";
  s += base64(tri);
  s += "\"";
  if (!a.queries.empty()) {
    std::vector<std::uint8_t> q, k;
    nlohmann::json q_scale = nlohmann::json::array(), k_scale = nlohmann::json::array();
    for (int h = 0; h < a.n_head; ++h) {
      quantise_vectors(a.queries[layer_idx * a.n_head + h], q, q_scale);
      quantise_vectors(a.keys[layer_idx * a.n_head + h], k, k_scale);
    }
    s += ",\"q\":\"" + base64(q) + "\",\"k\":\"" + base64(k) + "\"";
    s += ",\"q_scale\":" + q_scale.dump() + ",\"k_scale\":" + k_scale.dump();
  }
  s += "});\n";
  return s;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20)
          out += "?";  // not allowed in XML 1.0
        else
          out += static_cast<char>(c);
    }
  }
  return out;
}

// First `n` code points of UTF-8 text, with an ellipsis when cut.
std::string utf8_prefix(const std::string& s, int n) {
  std::size_t i = 0;
  int count = 0;
  while (i < s.size() && count < n) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    ++count;
  }
  return i < s.size() ? s.substr(0, i) + "\u2026" : s;
}

}  // namespace

void write_view(const nlohmann::json& run_doc, const ViewAttention* attn, const fs::path& out_html) {
  if (attn) check_attention(*attn);

  // Attention metadata and thumbnails (always inline), full patterns (inline or sibling files).
  nlohmann::json meta = nullptr;
  std::string inline_layers;  // <script> elements registering each layer, when inlined
  if (attn) {
    const int T = attn->seq_len, S = std::min(T, kThumbCells);
    std::vector<std::uint8_t> thumbs;  // (layers, heads, S, S)
    for (const auto& p : attn->patterns) pool_thumbnail(p, T, S, thumbs);
    const std::size_t full_bytes = attn->patterns.size() * static_cast<std::size_t>(T) * (T + 1) / 2 +
                                   2 * attn->queries.size() * static_cast<std::size_t>(T) * attn->d_head;
    const bool to_files = full_bytes > kViewInlineBytes;
    const std::string files_dir = out_html.stem().string() + "_files";
    meta = {{"n_layer", attn->n_layer},
            {"n_head", attn->n_head},
            {"seq_len", T},
            {"d_head", attn->queries.empty() ? 0 : attn->d_head},
            {"layers", attn->layers},
            {"has_qk", !attn->queries.empty()},
            {"thumb_size", S},
            {"thumbs", base64(thumbs)},
            {"full", to_files ? "files" : "inline"},
            {"files_dir", to_files ? files_dir : ""}};

    if (to_files) {
      // Write the whole directory under a temporary name, then swap it in.
      const fs::path dir = out_html.parent_path() / files_dir;
      fs::path tmp_dir = dir;
      tmp_dir += ".tmp" + std::to_string(::getpid());
      std::error_code ec;
      fs::remove_all(tmp_dir, ec);
      if (!fs::create_directories(tmp_dir, ec) && ec)
        throw Error("view: cannot create " + tmp_dir.string() + ": " + ec.message());
      for (std::size_t li = 0; li < attn->layers.size(); ++li) {
        const fs::path f = tmp_dir / ("attn_" + std::to_string(attn->layers[li]) + ".js");
        std::ofstream out(f, std::ios::binary);
        const std::string s = layer_script(*attn, li);
        out.write(s.data(), static_cast<std::streamsize>(s.size()));
        if (!out) throw Error("view: failed writing " + f.string());
      }
      fs::remove_all(dir, ec);
      fs::rename(tmp_dir, dir, ec);
      if (ec) throw Error("view: cannot rename " + tmp_dir.string() + " to " + dir.string() + ": " + ec.message());
    } else {
      for (std::size_t li = 0; li < attn->layers.size(); ++li)
        inline_layers += "<script>" + layer_script(*attn, li) + "</script>\n";
    }
  }

  // Assemble the page: template + style + scripts + data.
  std::string page(asset("index.html").data, asset("index.html").size);
  std::string style = "<style>\n", scripts;
  for (std::size_t i = 0; i < kViewAssets_count; ++i) {
    const std::string name = kViewAssets[i].name;
    const std::string body(kViewAssets[i].data, kViewAssets[i].size);
    if (ends_with(name, ".css")) style += body;
    if (ends_with(name, ".js")) {
      if (body.find("</script") != std::string::npos) throw Error("view: " + name + " contains </script");
      scripts += "<script>/* " + name + " */\n" + body + "</script>\n";
    }
  }
  style += "</style>";
  std::string data = "<script type=\"application/json\" id=\"lens-run\">" + json_for_script(run_doc) +
                     "</script>\n<script type=\"application/json\" id=\"lens-attn\">" + json_for_script(meta) +
                     "</script>\n" + inline_layers;
  replace_once(page, "<!--LENS:style-->", style);
  replace_once(page, "<!--LENS:scripts-->", scripts);
  replace_once(page, "<!--LENS:data-->", data);
  write_file_atomic(out_html, page);
}

void write_lens_svg(const nlohmann::json& run_doc, const fs::path& out_svg) {
  constexpr int kCellW = 64, kCellH = 20, kLeft = 56, kTop = 72;
  const nlohmann::json& layers = run_doc.at("layers");
  const nlohmann::json& tokens = run_doc.value("tokens", nlohmann::json::array());

  // Columns: every position that appears in any layer, in order.
  std::vector<int> positions;
  for (const auto& layer : layers)
    for (const auto& p : layer.at("positions")) positions.push_back(p.at("pos").get<int>());
  std::sort(positions.begin(), positions.end());
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
  auto column = [&](int pos) {
    return static_cast<int>(std::lower_bound(positions.begin(), positions.end(), pos) - positions.begin());
  };

  const int width = kLeft + kCellW * static_cast<int>(positions.size()) + 8;
  const int height = kTop + kCellH * static_cast<int>(layers.size()) + 8;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"monospace\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // Header: input tokens, rotated.
  for (std::size_t c = 0; c < positions.size(); ++c) {
    const int pos = positions[c];
    std::string text = pos < static_cast<int>(tokens.size()) ? tokens[pos].value("text", "") : "";
    const int x = kLeft + kCellW * static_cast<int>(c) + kCellW / 2;
    s << "<text x=\"" << x << "\" y=\"" << kTop - 6 << "\" transform=\"rotate(-35 " << x << ' ' << kTop - 6
      << ")\">" << xml_escape(utf8_prefix(text, 12)) << "</text>\n";
  }
  for (std::size_t r = 0; r < layers.size(); ++r) {
    const auto& layer = layers[r];
    const int y = kTop + kCellH * static_cast<int>(r);
    s << "<text x=\"4\" y=\"" << y + 14 << "\">" << layer.value("layer", static_cast<int>(r)) << "</text>\n";
    for (const auto& p : layer.at("positions")) {
      const int x = kLeft + kCellW * column(p.at("pos").get<int>());
      const auto& top = p.value("top", nlohmann::json::array());
      const double prob = top.empty() ? 0.0 : top[0].value("prob", 0.0);
      const std::string token = top.empty() ? "" : top[0].value("token", "");
      // White -> dark blue, the page's probability scale.
      const int red = static_cast<int>(std::lround(255 - prob * (255 - 8)));
      const int green = static_cast<int>(std::lround(255 - prob * (255 - 48)));
      const int blue = static_cast<int>(std::lround(255 - prob * (255 - 107)));
      s << "<g><title>" << xml_escape(token) << " p=" << prob << "</title><rect x=\"" << x << "\" y=\"" << y
        << "\" width=\"" << kCellW << "\" height=\"" << kCellH << "\" fill=\"rgb(" << red << ',' << green << ','
        << blue << ")\" stroke=\"#ddd\"/><text x=\"" << x + 3 << "\" y=\"" << y + 14 << "\" fill=\""
        << (prob > 0.5 ? "white" : "black") << "\">" << xml_escape(utf8_prefix(token, 8)) << "</text></g>\n";
    }
  }
  s << "</svg>\n";
  write_file_atomic(out_svg, s.str());
}

}  // namespace lens
