// Error types thrown by the lens library, and the process exit codes they map to.
// Library code throws; only tools/lens/main.cpp catches, prints "error: ..." and exits.
#pragma once

#include <stdexcept>
#include <string>

namespace lens {

/// Exit codes of the `lens` executable (documented in README.md).
enum class ExitCode : int {
  kOk = 0,
  kDrift = 1,      // `lens check` / `lens diff`: outputs drifted beyond tolerance; batch: some prompts failed
  kUsage = 2,      // bad flags or arguments
  kInput = 3,      // bad input data: prompt, token ids, data files, baseline files
  kModel = 4,      // model cannot be resolved or loaded: missing/corrupt files, unsupported architecture
  kInternal = 5,   // anything else (a bug, out of memory)
  kNetwork = 6,    // a download failed: no connection, interrupted (resumable), corrupt bytes, disk full
};

/// Base error: a message with context, plus the exit code it should produce.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, ExitCode code = ExitCode::kInternal)
      : std::runtime_error(msg), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

/// Flags or arguments that make no sense.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& msg) : Error(msg, ExitCode::kUsage) {}
};

/// Input data (prompts, token ids, text files) that cannot be used.
class InputError : public Error {
 public:
  explicit InputError(const std::string& msg) : Error(msg, ExitCode::kInput) {}
};

/// A model, checkpoint, tokenizer or lens file that cannot be resolved or loaded.
class ModelError : public Error {
 public:
  explicit ModelError(const std::string& msg) : Error(msg, ExitCode::kModel) {}
};

/// A download that failed for reasons outside the model: the network, the bytes received, the disk.
class NetworkError : public Error {
 public:
  explicit NetworkError(const std::string& msg) : Error(msg, ExitCode::kNetwork) {}
};

}  // namespace lens
