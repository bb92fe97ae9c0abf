// `lens view RUN.json -o page.html [--svg map.svg]`: the offline browser page (logit-lens table,
// head / model / neuron views, attention sinks) for a saved run; JSONL batch outputs pick a record
// with --index. The page is written by src/output/view.cpp; this file only gathers the inputs.
#include <fstream>
#include <iostream>

#include "commands.h"
#include "lens/attention.h"
#include "lens/error.h"
#include "output/view.h"

namespace lens::cli {

namespace {

struct ViewOptions {
  std::string input;
  std::string output;
  std::string svg;
  int64_t index = 0;
};

nlohmann::json read_run(const std::string& path, int64_t index) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
  }
  // JSON lines (batch output): take record `index`.
  std::istringstream lines(text);
  std::string line;
  for (int64_t i = 0; std::getline(lines, line); ++i) {
    if (i != index) continue;
    try {
      return nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path + ": record " + std::to_string(index) + " is not valid JSON: " + e.what());
    }
  }
  throw InputError(path + ": not a lens run JSON document (or JSONL without record " + std::to_string(index) + ")");
}

}  // namespace

void write_view_files(const nlohmann::json& doc, const std::filesystem::path& base_dir, const std::string& html,
                      const std::string& svg) {
  if (!doc.contains("layers") || !doc.contains("tokens")) throw InputError("not a lens run document (no layers/tokens)");
  if (!html.empty()) {
    if (doc.contains("attention")) {
      AttentionCapture cap = read_attention(doc["attention"], base_dir);
      ViewAttention va;
      va.n_layer = static_cast<int>(cap.n_layer);
      va.n_head = static_cast<int>(cap.heads.size());
      va.seq_len = static_cast<int>(cap.seq_len);
      va.d_head = static_cast<int>(cap.d_head);
      va.layers.assign(cap.layers.begin(), cap.layers.end());
      auto split = [](const std::vector<at::Tensor>& per_layer, std::vector<std::vector<float>>& out) {
        for (const auto& t : per_layer) {
          at::Tensor f = t.to(at::kFloat).contiguous();
          for (int64_t h = 0; h < f.size(0); ++h) {
            at::Tensor row = f[h].contiguous();
            out.emplace_back(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
          }
        }
      };
      split(cap.patterns, va.patterns);
      split(cap.queries, va.queries);
      split(cap.keys, va.keys);
      write_view(doc, &va, html);
    } else {
      write_view(doc, nullptr, html);
    }
    std::cerr << "wrote " << html << std::endl;
  }
  if (!svg.empty()) {
    write_lens_svg(doc, svg);
    std::cerr << "wrote " << svg << std::endl;
  }
}

void setup_view(CLI::App& app) {
  auto o = std::make_shared<ViewOptions>();
  auto* cmd = app.add_subcommand("view", "Write the offline HTML page (and SVG) for a saved lens run");
  cmd->add_option("input", o->input, "JSON written by 'lens run -o' (or JSONL of a batch)")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "HTML page to write");
  cmd->add_option("--svg", o->svg, "SVG heat map to write");
  cmd->add_option("--index", o->index, "Record of a JSONL file")->check(CLI::NonNegativeNumber);
  cmd->callback([o] {
    if (o->output.empty() && o->svg.empty()) throw UsageError("give -o page.html and/or --svg map.svg");
    const nlohmann::json doc = read_run(o->input, o->index);
    write_view_files(doc, std::filesystem::path(o->input).parent_path(), o->output, o->svg);
  });
}

}  // namespace lens::cli
