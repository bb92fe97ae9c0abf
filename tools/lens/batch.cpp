// Batch mode of `lens run` (see batch.h): reads a prompt file (text, one prompt per line, or JSONL),
// keeps this shard's share, skips what a resumed output already holds, runs the rest through
// lens::run_prompts in batches and appends one JSON line per prompt in input order. Each record
// is one write() of the whole line, so a killed run leaves at most one incomplete last line,
// which --resume cuts off. No scheduler here: shards are independent processes (Slurm, parallel).
#include "batch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <set>

#include "commands.h"
#include "lens/batch.h"
#include "lens/error.h"
#include "lens/runner.h"
#include "lens/safetensors.h"

namespace lens::cli {

namespace fs = std::filesystem;
using nlohmann::json;

void add_batch_flags(CLI::App* cmd, BatchFlags& f) {
  cmd->add_option("--prompts", f.prompts,
                  "Batch: prompt file, one prompt per line, or JSONL with \"prompt\" (or \"token_ids\"), optional "
                  "\"id\", \"target\"; writes one JSON record per line")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--resume", f.resume, "Batch: continue an interrupted -o file instead of starting it afresh");
  cmd->add_option("--shard", f.shard, "Batch: run only prompts with index % N == K (K/N, e.g. 0/4)");
  cmd->add_option("--batch-size", f.batch_size, "Batch: prompts per forward pass")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_flag("--store-logprobs", f.store_logprobs,
                "Also store every cell's full log-probs (float16 safetensors next to -o) for exact KL in 'lens check'");
}

namespace {

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;  // continuation bytes
    uint32_t cp = c;
    if (c >= 0x80) {
      if ((c >> 5) == 0x6) {
        n = 1, cp = c & 0x1F;
      } else if ((c >> 4) == 0xE) {
        n = 2, cp = c & 0x0F;
      } else if ((c >> 3) == 0x1E) {
        n = 3, cp = c & 0x07;
      } else {
        return false;
      }
    }
    if (i + n >= s.size() && n > 0) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// One line of the prompt file: a prompt to run, or why it cannot be run.
struct Item {
  int64_t index = 0;
  json id;  // null when the file gives none
  BatchPrompt prompt;
  std::string error_code, error_message;
};

std::vector<int64_t> record_targets(const json& t, const Tokenizer* tok) {
  std::vector<int64_t> out;
  const json list = t.is_array() ? t : json::array({t});
  for (const auto& e : list) {
    if (e.is_number_integer()) {
      out.push_back(e.get<int64_t>());
    } else if (e.is_string()) {
      if (tok == nullptr) throw InputError("a text target needs a tokenizer; give a token id");
      auto ids = tok->encode(e.get<std::string>(), false);
      if (ids.empty()) throw InputError("target '" + e.get<std::string>() + "' encodes to no tokens");
      out.push_back(ids.front());
    } else {
      throw InputError("\"target\" must be a string, an integer or a list of them");
    }
  }
  return out;
}

std::vector<Item> read_prompts(const fs::path& path, const Tokenizer* tok, const LensOptions& base, bool add_special) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = nl + 1;
  }
  const std::string ext = path.extension().string();
  bool jsonl = ext == ".jsonl" || ext == ".ndjson";
  if (!jsonl)
    for (const auto& l : lines)
      if (l.find_first_not_of(" \t") != std::string::npos) {
        jsonl = l[l.find_first_not_of(" \t")] == '{';
        break;
      }
  std::vector<Item> items(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    Item& it = items[i];
    it.index = static_cast<int64_t>(i);
    it.prompt.opts = base;
    it.prompt.in.add_special = add_special;
    const std::string& line = lines[i];
    if (!valid_utf8(line)) {
      it.error_code = "invalid_utf8";
      it.error_message = fmt::format("{}:{}: the line is not valid UTF-8", path.string(), i + 1);
      continue;
    }
    if (!jsonl) {
      it.prompt.in.text = line;
      continue;
    }
    try {
      const json r = json::parse(line);
      if (!r.is_object()) throw InputError("not a JSON object");
      if (r.contains("id")) it.id = r["id"];
      if (r.contains("prompt") == r.contains("token_ids"))
        throw InputError("needs exactly one of \"prompt\" (text) and \"token_ids\" (list of integers)");
      if (r.contains("prompt")) {
        if (!r["prompt"].is_string()) throw InputError("\"prompt\" must be a string");
        it.prompt.in.text = r["prompt"].get<std::string>();
      } else {
        it.prompt.in.ids = r["token_ids"].get<std::vector<int64_t>>();
      }
      if (r.contains("target")) {
        try {
          for (int64_t t : record_targets(r["target"], tok)) it.prompt.opts.targets.push_back(t);
        } catch (const InputError& e) {
          it.error_code = "bad_target";
          it.error_message = fmt::format("{}:{}: {}", path.string(), i + 1, e.what());
        }
      }
    } catch (const json::exception& e) {
      it.error_code = "bad_record";
      it.error_message = fmt::format("{}:{}: {}", path.string(), i + 1, e.what());
    } catch (const InputError& e) {
      it.error_code = "bad_record";
      it.error_message = fmt::format("{}:{}: {}", path.string(), i + 1, e.what());
    }
  }
  return items;
}

std::pair<int64_t, int64_t> parse_shard(const std::string& s) {
  if (s.empty()) return {0, 1};
  const size_t slash = s.find('/');
  try {
    size_t a = 0, b = 0;
    const int64_t k = std::stoll(s.substr(0, slash), &a), n = std::stoll(s.substr(slash + 1), &b);
    if (slash != std::string::npos && a == slash && b == s.size() - slash - 1 && n >= 1 && k >= 0 && k < n)
      return {k, n};
  } catch (const std::exception&) {
  }
  throw UsageError("--shard: '" + s + "' is not K/N with 0 <= K < N (e.g. 0/4)");
}

// Validates an existing output for --resume: cuts an incomplete last line (a killed write), checks
// every complete line is a record of this run, and returns the indices already done.
std::set<int64_t> resume_file(const fs::path& path, const std::vector<Item>& items, int64_t k, int64_t n) {
  std::set<int64_t> done;
  if (!fs::exists(path)) return done;
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const size_t keep = text.empty() || text.back() == '\n' ? text.size() : text.rfind('\n') + 1;  // npos + 1 == 0
  if (keep != text.size()) {
    if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0)
      throw InputError("cannot truncate " + path.string() + ": " + std::strerror(errno));
    log(fmt::format("{}: cut an incomplete last line ({} bytes) left by an interrupted run", path.string(),
                    text.size() - keep));
    text.resize(keep);
  }
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    const std::string line = text.substr(start, nl - start);
    start = nl + 1;
    ++line_no;
    const std::string where = fmt::format("--resume: {}:{}: ", path.string(), line_no);
    json r;
    try {
      r = json::parse(line);
    } catch (const json::exception&) {
      throw InputError(where + "not a JSON record; is this an output of 'lens run --prompts'?");
    }
    if (!r.is_object() || !r.contains("index") || !r["index"].is_number_integer())
      throw InputError(where + "a record without \"index\"");
    const int64_t i = r["index"].get<int64_t>();
    if (i < 0 || i >= static_cast<int64_t>(items.size()) || i % n != k)
      throw InputError(where + fmt::format("record {} is not one of this run's prompts (other --prompts or --shard?)", i));
    const Item& it = items[static_cast<size_t>(i)];
    if (r.value("id", json()) != it.id || (r.contains("prompt") && it.prompt.in.text && r["prompt"] != *it.prompt.in.text))
      throw InputError(where + fmt::format("record {} was written for a different prompt (other --prompts file?)", i));
    if (!done.insert(i).second) throw InputError(where + fmt::format("record {} appears twice", i));
  }
  return done;
}

// Appends whole lines to a file descriptor: one write() per record, fsync now and then.
class RecordWriter {
 public:
  RecordWriter(const std::string& path, bool append) : path_(path) {
    if (path.empty()) {
      fd_ = STDOUT_FILENO;
      return;
    }
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | (append ? 0 : O_TRUNC), 0644);
    if (fd_ < 0) throw InputError("cannot open " + path + " for writing: " + std::strerror(errno));
  }
  ~RecordWriter() {
    if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
  }
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  void write(const std::string& line) {
    // One write() of the whole line; a regular file takes it whole unless the disk is full, and
    // should a write come back short, the rest follows (a crash then can only cut the last line).
    size_t off = 0;
    while (off < line.size()) {
      const ssize_t w = ::write(fd_, line.data() + off, line.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw Error("cannot write " + (path_.empty() ? std::string("stdout") : path_) + ": " + std::strerror(errno));
      off += static_cast<size_t>(w);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_sync_ > std::chrono::seconds(2)) sync();
  }
  void sync() {
    if (fd_ != STDOUT_FILENO) ::fsync(fd_);
    last_sync_ = std::chrono::steady_clock::now();
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::chrono::steady_clock::time_point last_sync_ = std::chrono::steady_clock::now();
};

// Progress on stderr: redrawn in place on a terminal (at most 10 times a second), a plain line
// every 10 s otherwise (logs of batch jobs).
class Progress {
 public:
  Progress(int64_t total, bool quiet) : total_(total), quiet_(quiet), tty_(::isatty(STDERR_FILENO) != 0) {}

  void update(int64_t done, int64_t failed, bool final = false) {
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!final && since < (tty_ ? 0.1 : 10.0)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    constexpr int kWidth = 24;
    const int fill = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
    const std::string bar = std::string(fill, '=') + std::string(kWidth - fill, ' ');
    const std::string line =
        fmt::format("[{}] {}/{}{} {:.1f} prompts/s ETA {}:{:02d}", bar, done, total_,
                    failed > 0 ? fmt::format(" ({} failed)", failed) : "", rate, static_cast<int>(eta) / 60,
                    static_cast<int>(eta) % 60);
    if (tty_) {
      std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

 private:
  int64_t total_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

json error_record(const Item& it, const std::string& code, const std::string& message) {
  return json{{"index", it.index}, {"id", it.id}, {"error", {{"code", code}, {"message", message}}}};
}

}  // namespace

void store_logprobs_sidecar(json& j, const RunDocument& doc, const std::string& output) {
  if (output.empty()) throw UsageError("--store-logprobs needs -o FILE (the log-probs go next to it)");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& r : doc.lenses) tensors.emplace_back(r.lens, r.logprobs);
  const fs::path side = fs::path(output).string() + ".logprobs.safetensors";
  write_safetensors(side, tensors, {{"layout", "(layers, positions, vocab) log-probs, as in the JSON's layers"}});
  j["logprobs"] = {{"file", side.filename().string()}, {"tensor", doc.lenses.front().lens}};
}

void run_batch(Model& model, const Tokenizer* tok, const std::string& model_name, const LensOptions& opts,
               bool add_special, const std::string& output, const BatchFlags& f, const RuntimeInfo& runtime) {
  const auto [shard_k, shard_n] = parse_shard(f.shard);
  if (f.resume && output.empty()) throw UsageError("--resume needs -o FILE (the output to continue)");
  if (f.store_logprobs && output.empty()) throw UsageError("--store-logprobs needs -o FILE (the log-probs go next to it)");
  LensOptions base = opts;
  base.keep_logprobs = f.store_logprobs;
  const std::vector<Item> items = read_prompts(f.prompts, tok, base, add_special);
  std::vector<const Item*> mine;
  for (const auto& it : items)
    if (it.index % shard_n == shard_k) mine.push_back(&it);
  const std::set<int64_t> done = f.resume ? resume_file(output, items, shard_k, shard_n) : std::set<int64_t>{};
  std::vector<const Item*> todo;
  for (const Item* it : mine)
    if (!done.count(it->index)) todo.push_back(it);
  log(fmt::format("{}: {} prompts{}{}, {} to run", f.prompts, items.size(),
                  shard_n > 1 ? fmt::format(", shard {}/{} has {}", shard_k, shard_n, mine.size()) : "",
                  done.empty() ? "" : fmt::format(", {} already in {}", done.size(), output), todo.size()));

  const fs::path side_dir = output + ".logprobs";
  if (f.store_logprobs) fs::create_directories(side_dir);
  RecordWriter writer(output, f.resume);
  LogitLens lens(model);
  const TokenNamer namer = make_namer(tok);
  Progress progress(static_cast<int64_t>(todo.size()), is_quiet());
  int64_t n_done = 0, n_failed = 0;
  for (size_t b0 = 0; b0 < todo.size(); b0 += static_cast<size_t>(f.batch_size)) {
    const size_t b1 = std::min(todo.size(), b0 + static_cast<size_t>(f.batch_size));
    std::vector<BatchPrompt> batch;
    std::vector<size_t> runs;  // todo positions of the prompts in `batch`
    for (size_t i = b0; i < b1; ++i)
      if (todo[i]->error_code.empty()) {
        batch.push_back(todo[i]->prompt);
        runs.push_back(i);
      }
    std::vector<BatchOutcome> outcomes = run_prompts(model, tok, model_name, {&lens}, batch);
    // Log-probs of this batch in one sidecar named by its first index; written (atomically)
    // before any record that refers to it.
    const std::string side_name = fmt::format("b{:09d}.safetensors", todo[b0]->index);
    if (f.store_logprobs) {
      std::vector<std::pair<std::string, at::Tensor>> tensors;
      for (size_t j = 0; j < outcomes.size(); ++j)
        if (outcomes[j].doc)
          tensors.emplace_back(fmt::format("{}.{}", todo[runs[j]]->index, lens.name()), outcomes[j].doc->lenses[0].logprobs);
      if (!tensors.empty()) write_safetensors(side_dir / side_name, tensors);
    }
    size_t j = 0;
    for (size_t i = b0; i < b1; ++i) {
      const Item& it = *todo[i];
      json rec;
      if (!it.error_code.empty()) {
        rec = error_record(it, it.error_code, it.error_message);
      } else {
        const BatchOutcome& out = outcomes[j++];
        if (!out.doc) {
          rec = error_record(it, out.error_code, out.error_message);
        } else {
          rec = run_document_json(*out.doc, namer);
          rec["runtime"] = runtime;
          rec["index"] = it.index;
          rec["id"] = it.id;
          if (f.store_logprobs)
            rec["logprobs"] = {{"file", (side_dir.filename() / side_name).string()},
                               {"tensor", fmt::format("{}.{}", it.index, lens.name())}};
          if (!out.doc->lenses.front().final_ok)
            log(fmt::format("warning: prompt {}: last layer through the lens differs from the model's logits by {:.3g}",
                            it.index, out.doc->lenses.front().final_max_abs_diff));
        }
      }
      n_failed += rec.contains("error");
      writer.write(dump_json(rec) + "\n");
    }
    n_done += static_cast<int64_t>(b1 - b0);
    progress.update(n_done, n_failed);
  }
  writer.sync();
  progress.update(n_done, n_failed, true);
  if (!output.empty()) log(fmt::format("wrote {} records to {}", n_done, output));
  if (n_failed > 0)
    throw Error(fmt::format("{} of {} prompts failed (their records carry \"error\")", n_failed, n_done), ExitCode::kDrift);
}

}  // namespace lens::cli
