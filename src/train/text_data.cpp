// Reading and packing text corpora (see lens/text_data.h).
#include "lens/text_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "lens/error.h"

namespace lens {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(ws);
  return s.substr(a, b - a + 1);
}

bool is_jsonl(const fs::path& p) { return p.extension() == ".jsonl"; }

}  // namespace

std::vector<std::string> read_documents(const std::vector<fs::path>& files, const TextDataOptions& opts) {
  if (files.empty()) throw UsageError("no data files given");
  std::vector<std::string> docs;
  for (const fs::path& f : files) {
    if (!fs::is_regular_file(f)) throw InputError(f.string() + ": no such file");
    std::ifstream in(f, std::ios::binary);
    if (!in) throw InputError(f.string() + ": cannot open");
    if (is_jsonl(f)) {
      std::string line;
      int64_t lineno = 0;
      while (std::getline(in, line)) {
        ++lineno;
        if (trim(line).empty()) continue;
        const std::string where = f.string() + ":" + std::to_string(lineno);
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
          throw InputError(where + ": not a JSON object");
        }
        if (!j.is_object() || !j.contains(opts.text_field))
          throw InputError(where + ": no \"" + opts.text_field + "\" field (choose one with --text-field)");
        if (!j[opts.text_field].is_string()) throw InputError(where + ": \"" + opts.text_field + "\" is not a string");
        std::string d = trim(j[opts.text_field].get<std::string>());
        if (!d.empty()) docs.push_back(std::move(d));
      }
    } else {
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (opts.separator.empty()) {
        std::string d = trim(text);
        if (!d.empty()) docs.push_back(std::move(d));
        continue;
      }
      size_t start = 0;
      while (start <= text.size()) {
        size_t end = text.find(opts.separator, start);
        if (end == std::string::npos) end = text.size();
        std::string d = trim(text.substr(start, end - start));
        if (!d.empty()) docs.push_back(std::move(d));
        start = end + opts.separator.size();
      }
    }
  }
  if (docs.empty()) throw InputError("the data files hold no text");
  return docs;
}

double PackedData::nats_to_bpb() const {
  return n_bytes > 0 ? (static_cast<double>(n_tokens) / static_cast<double>(n_bytes)) / std::log(2.0) : 0.0;
}

PackedData pack_documents(const std::vector<std::string>& docs, const Tokenizer& tok, int64_t eos_id,
                          int64_t seq_len) {
  if (seq_len < 2) throw UsageError("sequence length must be at least 2");
  // The package tokenizes each group as one string with special tokens on: a tokenizer that adds
  // BOS (LLaMA's add_bos_token) puts it in front of the group; GPT-2's adds nothing.
  std::vector<int64_t> prefix;
  if (auto bos = tok.bos_id()) {
    const std::vector<int64_t> special = tok.encode("", /*add_special=*/true);
    if (!special.empty() && special.front() == *bos) prefix.push_back(*bos);
  }
  std::vector<int64_t> kept;  // the sequences, concatenated
  int64_t total = 0, bytes = 0;
  for (size_t g = 0; g < docs.size(); g += kPackGroupDocs) {
    std::vector<int64_t> stream = prefix;
    for (size_t i = g; i < std::min(docs.size(), g + kPackGroupDocs); ++i) {
      stream.push_back(eos_id);
      const std::vector<int64_t> ids = tok.encode(docs[i], /*add_special=*/false);
      stream.insert(stream.end(), ids.begin(), ids.end());
      bytes += static_cast<int64_t>(docs[i].size());
    }
    const int64_t len = static_cast<int64_t>(stream.size());
    total += len;
    const int64_t n = (len - 1) / seq_len;  // every chunk but the group's last, full or not
    kept.insert(kept.end(), stream.begin(), stream.begin() + n * seq_len);
  }
  const int64_t n = static_cast<int64_t>(kept.size()) / seq_len;
  if (n == 0)
    throw InputError("the data is " + std::to_string(total) + " tokens, not more than one sequence of " +
                     std::to_string(seq_len) + " (give more text or a smaller --seq-len)");
  PackedData out;
  out.sequences = at::tensor(kept, at::kLong).view({n, seq_len});
  out.n_tokens = total;
  out.n_bytes = bytes;
  return out;
}

std::pair<PackedData, PackedData> split_tail(const PackedData& data, double fraction) {
  if (!(fraction > 0.0 && fraction < 1.0)) throw UsageError("--val-fraction must be between 0 and 1 (exclusive)");
  const int64_t n = data.sequences.size(0);
  const int64_t n_val = std::max<int64_t>(1, static_cast<int64_t>(std::llround(fraction * static_cast<double>(n))));
  if (n_val >= n)
    throw UsageError("--val-fraction " + std::to_string(fraction) + " leaves no training sequences (" +
                     std::to_string(n) + " in all)");
  PackedData train = data, val = data;  // the bytes-per-token ratio is the corpus's, shared by both
  train.sequences = data.sequences.slice(0, 0, n - n_val);
  val.sequences = data.sequences.slice(0, n - n_val, n);
  return {train, val};
}

}  // namespace lens
