// Running the lens binary from tests: exit code, stdout and stderr captured separately.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace lens::test {

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `[env] lens <args>` through the shell.
inline CliResult run_cli(const std::string& args, const std::string& env = "") {
  static int counter = 0;
  const std::filesystem::path err_file = std::filesystem::temp_directory_path() /
                                         ("lens_cli_err_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  const std::string cmd = env + (env.empty() ? "" : " ") + std::string(LENS_BINARY) + " " + args + " 2>" + err_file.string();
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::filesystem::remove(err_file);
  return r;
}

/// A fresh, empty temporary directory.
inline std::filesystem::path temp_dir(const std::string& tag) {
  static int counter = 0;
  auto p = std::filesystem::temp_directory_path() /
           ("lens_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace lens::test
