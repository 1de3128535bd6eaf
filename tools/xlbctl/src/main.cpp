// SPDX-License-Identifier: Apache-2.0
// xlbctl: the operator's CLI of xlb (docs/cli.md). Global flags are gflags; the subcommands, their
// flags and the exit codes live in xlbctl_lib (commands.h), so that the tests can drive them.
#include <gflags/gflags.h>

#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "xlb/api/client.h"
#include "xlbctl/args.h"
#include "xlbctl/commands.h"
#include "xlbctl/syntax.h"

#ifndef XLBCTL_VERSION
#define XLBCTL_VERSION "dev"
#endif

DEFINE_string(socket, "/run/xlb/xlbd.sock", "xlbd's API unix socket (root only)");
DEFINE_string(tcp, "", "HOST:PORT of xlbd's TCP listener (api_tcp_listen), instead of --socket");
DEFINE_string(token_file, "", "file holding the bearer token for --tcp (api_token_file)");
DEFINE_int32(timeout, 10, "seconds to wait for xlbd per request");
DEFINE_bool(json, false, "print JSON (-j)");

namespace {

// The flags split_global_flags() hands to gflags; everything else is the command's.
const std::set<std::string, std::less<>> kGlobalFlags = {"socket", "tcp", "token_file", "timeout",
                                                         "json"};

std::optional<bool> global_flag(std::string_view name) {
  if (!kGlobalFlags.contains(name)) return std::nullopt;
  gflags::CommandLineFlagInfo info;
  if (!gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info)) return std::nullopt;
  return info.type == "bool";
}

int usage_failure(const std::string& message) {
  std::cerr << "xlbctl: " << message << "\n(xlbctl help lists commands and flags)\n";
  return xlbctl::kExitUsage;
}

// The token is the file's first line; trailing blanks and CR (a file edited elsewhere) go.
xlb::Result<std::string> read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) return xlb::Error::from_errno(errno, "--token-file: cannot read " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) {
    token.pop_back();
  }
  if (token.empty()) return xlb::Error::invalid("--token-file: " + path + " holds no token");
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetVersionString(XLBCTL_VERSION);
  gflags::SetUsageMessage("the operator's CLI of xlb; run 'xlbctl help'");
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.size() == 1 && words[0] == "--version") {
    std::cout << "xlbctl " << XLBCTL_VERSION << "\n";
    return xlbctl::kExitOk;
  }
  auto split = xlbctl::split_global_flags(words, global_flag);
  if (!split) return usage_failure(split.error().message);
  // SetCommandLineOption, not ParseCommandLineFlags: the latter exits with status 1 on a bad
  // value, and a bad flag is a usage error (2) here.
  for (const auto& [name, value] : split->globals) {
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
      return usage_failure("--" + name + ": bad value '" + value + "'");
    }
  }
  if (FLAGS_timeout < 1 || FLAGS_timeout > 3600) {
    return usage_failure("--timeout: want seconds in [1, 3600]");
  }

  std::optional<xlb::api::Client> client;
  if (!FLAGS_tcp.empty()) {
    auto target = xlbctl::parse_tcp_target(FLAGS_tcp);
    if (!target) return usage_failure(target.error().message);
    if (FLAGS_token_file.empty()) {
      return usage_failure("--tcp needs --token-file (xlbd's TCP listener wants a bearer token)");
    }
    auto token = read_token(FLAGS_token_file);
    if (!token) return usage_failure(token.error().to_string());
    client = xlb::api::Client::tcp(target->host, target->port, *token);
  } else {
    if (!FLAGS_token_file.empty()) return usage_failure("--token-file goes with --tcp");
    client = xlb::api::Client::unix_socket(FLAGS_socket);
  }
  client->set_timeout_seconds(FLAGS_timeout);

  xlbctl::ClientApi api(*client);
  xlbctl::Env env = xlbctl::default_env(std::cout, std::cerr);
  int code = xlbctl::run(split->rest, split->help, xlbctl::Options{.json = FLAGS_json}, api, env);
  std::cout.flush();
  return code;
}
