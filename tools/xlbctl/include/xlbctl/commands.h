// SPDX-License-Identifier: Apache-2.0
// xlbctl's commands: one table (name, synopsis, help, flags, handler) that drives dispatch,
// `xlbctl help` and the tests. run() takes the words left after the global flags and returns
// the exit status:
//   0  done
//   1  xlbd refused the operation (an HTTP error status; its message is printed)
//   2  usage error: unknown command or flag, bad VIP/address/number (nothing was sent)
//   3  xlbd could not be reached (api::is_connection_error), with a hint
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/api/client.h"
#include "xlb/core/result.h"
#include "xlbctl/args.h"

namespace xlbctl {

enum ExitCode : int { kExitOk = 0, kExitRefused = 1, kExitUsage = 2, kExitUnreachable = 3 };

using Json = nlohmann::json;

// What the commands need of xlbd: api::Client in xlbctl, a fake in the unit tests.
class Api {
 public:
  virtual ~Api() = default;
  virtual xlb::Result<Json> get(const std::string& path) = 0;
  virtual xlb::Result<Json> post(const std::string& path, const Json& body) = 0;
  virtual xlb::Result<Json> patch(const std::string& path, const Json& body) = 0;
  virtual xlb::Result<Json> del(const std::string& path) = 0;
  // Where the API is, for messages ("unix:/run/xlb/xlbd.sock").
  virtual std::string describe() const = 0;
};

class ClientApi : public Api {
 public:
  explicit ClientApi(xlb::api::Client client) : client_(std::move(client)) {}
  xlb::Result<Json> get(const std::string& path) override { return client_.get(path); }
  xlb::Result<Json> post(const std::string& path, const Json& body) override {
    return client_.post(path, body);
  }
  xlb::Result<Json> patch(const std::string& path, const Json& body) override {
    return client_.patch(path, body);
  }
  xlb::Result<Json> del(const std::string& path) override { return client_.del(path); }
  std::string describe() const override { return client_.describe(); }

 private:
  xlb::api::Client client_;
};

// The outside world of a command: output streams and time (replaced in tests, so that
// `stats --watch` runs without waiting).
struct Env {
  std::ostream& out;
  std::ostream& err;
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<bool()> interrupted;  // Ctrl-C was pressed since catch_interrupts()
  // From now on the first Ctrl-C only sets interrupted() (stats --watch ends cleanly, exit 0);
  // a second one kills as usual. Other commands keep the default: Ctrl-C kills at once.
  std::function<void()> catch_interrupts;
};

// The real streams' environment: steady clock, sleeps that end early on Ctrl-C.
Env default_env(std::ostream& out, std::ostream& err);

struct Options {
  bool json = false;
};

struct Call;
using Handler = xlb::Status (*)(Call&);

struct Command {
  std::string_view name;      // the words that select it: "backend set"
  std::string_view synopsis;  // its arguments: "VIP ADDRESS (--weight N | --drain | --undrain)"
  std::string_view summary;   // one line, for `xlbctl help`
  std::string_view details;   // paragraphs and examples, for `xlbctl help COMMAND`
  std::vector<FlagSpec> flags;
  size_t min_args = 0;  // positionals after the name
  size_t max_args = 0;
  Handler handler = nullptr;
};

// Everything a handler gets.
struct Call {
  const Command& command;
  ParsedArgs args;
  Api& api;
  const Options& options;
  Env& env;
};

// The table, in help order.
std::span<const Command> commands();
// The command named by the leading words, and how many words its name takes; nullptr if none.
const Command* find_command(std::span<const std::string> words, size_t* name_words);

std::string general_help();
// The commands of a group ("vip"), or "" when no command name starts with `group`.
std::string group_help(std::string_view group);
std::string command_help(const Command& command);

// Runs the command the words name (`help` as given by split_global_flags).
int run(std::span<const std::string> words, bool help, const Options& options, Api& api, Env& env);

// The exit status for an error, after printing it (and a hint) to env.err.
int report_error(const xlb::Error& error, std::string_view command, const Api& api, Env& env);

}  // namespace xlbctl
