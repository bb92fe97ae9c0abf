// The terminal table of `lens run`: one row per lens layer, one column per position, each cell
// the layer's top token and its probability. Columns are fitted to the terminal width.
#include <fmt/format.h>

#include "lens/output.h"

namespace lens {

namespace {

// Number of terminal columns a UTF-8 string takes (one per code point; wide CJK counted as one,
// which only misaligns, never breaks, the table).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// Makes token text safe for one table cell: control characters escaped, cut to `width` columns.
std::string cell_text(const std::string& s, size_t width) {
  std::string out;
  size_t cols = 0;
  for (size_t i = 0; i < s.size() && cols < width;) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n", cols += 2, ++i;
    } else if (c == '\t') {
      out += "\\t", cols += 2, ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += "?", ++cols, ++i;
    } else {
      size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      out.append(s, i, len);
      i += len;
      ++cols;
    }
  }
  if (cols > width) out = out.substr(0, width);
  return out;
}

std::string pad(const std::string& s, size_t width) {
  const size_t w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

}  // namespace

std::string lens_table(const RunDocument& doc, const LensResult& result, const TokenNamer& namer, int width) {
  if (result.layers.empty()) return "";
  const size_t kTok = 10;               // token text columns per cell
  const size_t kCell = kTok + 1 + 4;    // "token 0.93"
  const size_t kLabel = 14;             // "resid_post 31 "
  const auto& positions = result.layers.front().positions;
  size_t fit = width > static_cast<int>(kLabel) ? (width - kLabel) / (kCell + 1) : 1;
  fit = std::max<size_t>(fit, 1);
  // Show the last positions when not all fit: the end of the prompt is usually what matters.
  const size_t first = positions.size() > fit ? positions.size() - fit : 0;

  std::string out;
  out += fmt::format("{} lens, {} ({}, {} layers, {})\n", result.lens, doc.model.name, doc.model.architecture,
                     doc.model.n_layer, doc.model.dtype);
  if (first > 0) out += fmt::format("(showing the last {} of {} positions; use --positions or --json)\n", fit, positions.size());
  std::string header = pad("", kLabel);
  for (size_t i = first; i < positions.size(); ++i) {
    const int64_t pos = positions[i].pos;
    std::string tok = pos < static_cast<int64_t>(doc.tokens.size()) ? doc.tokens[pos].text : "";
    header += pad(cell_text(fmt::format("{}:{}", pos, tok), kCell), kCell) + " ";
  }
  out += header + "\n";
  out += std::string(std::min<size_t>(display_width(header), width), '-') + "\n";
  for (auto it = result.layers.rbegin(); it != result.layers.rend(); ++it) {  // last layer on top
    const LayerStats& layer = *it;
    std::string row = pad(layer.layer == 0 ? "embed" : fmt::format("layer {}", layer.layer), kLabel);
    for (size_t i = first; i < layer.positions.size(); ++i) {
      const auto& p = layer.positions[i];
      const auto& top = p.top.front();
      row += pad(cell_text(namer(top.id), kTok), kTok) + fmt::format(" {:4.2f}", top.prob).substr(0, 5) + " ";
    }
    out += row + "\n";
  }
  out += fmt::format("final-layer check: lens vs model logits max |diff| = {:.2e} ({})\n", result.final_max_abs_diff,
                     result.final_ok ? "ok" : "MISMATCH");
  return out;
}

}  // namespace lens
