// SPDX-License-Identifier: Apache-2.0
// The command table and what runs it: dispatch, help, and the mapping of errors to exit codes.
#include "xlbctl/commands.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>

#include "handlers.h"

namespace xlbctl {
namespace {

constexpr std::string_view kVipSyntax =
    "A VIP is ADDRESS[:PORT]/PROTOCOL: 198.18.200.1:80/tcp, [2001:db8:200::1]:443/udp, or\n"
    "198.18.200.2/tcp (port-less: every port of the address). A backend is a bare address:\n"
    "198.18.3.11 or 2001:db8:3::11 (no brackets, no port: xlb forwards to the VIP's port).\n";

const std::vector<Command>& table() {
  static const std::vector<Command> kCommands = {
      {.name = "status",
       .synopsis = "",
       .summary = "xlbd's version, interface, attach mode, XDP program, uptime, reconciles, "
                  "discovery sources",
       .details = "Example:\n  xlbctl status\n  xlbctl -j status | jq .prog_id\n",
       .handler = handlers::status},
      {.name = "vip list",
       .synopsis = "",
       .summary = "every VIP: settings, ring size, backend count, traffic",
       .details = "Example:\n  xlbctl vip list\n",
       .handler = handlers::vip_list},
      {.name = "vip show",
       .synopsis = "VIP",
       .summary = "one VIP: its settings and its backends",
       .details = "Example:\n  xlbctl vip show 198.18.200.1:80/tcp\n",
       .min_args = 1,
       .max_args = 1,
       .handler = handlers::vip_show},
      {.name = "vip add",
       .synopsis = "VIP",
       .summary = "create a VIP (without backends: add them with `backend add`)",
       .details = "The ring size must be prime; by default xlbd picks one (at least 100 slots per\n"
                  "backend).\n\nExamples:\n"
                  "  xlbctl vip add 198.18.200.1:80/tcp --name web\n"
                  "  xlbctl vip add [2001:db8:200::1]:443/udp --hash src\n"
                  "  xlbctl vip add 198.18.200.2/tcp --ring-size 65537 --no-lru\n",
       .flags = {{"name", "NAME", "a label, unique among VIPs (metrics, tables)"},
                 {"ring-size", "N", "Maglev ring size, a prime"},
                 {"no-lru", "", "no connection table: every packet is placed by the ring"},
                 {"hash", "MODE",
                  "5tuple (default), src (a client's flows to one backend), no-sport"},
                 {"gue", "", "encapsulate in GUE (UDP) instead of IP-in-IP"},
                 {"icmp-too-big", "", "answer oversized packets with ICMP too-big"},
                 {"no-rate-guard", "", "exempt from the new-flow rate guard"}},
       .min_args = 1,
       .max_args = 1,
       .handler = handlers::vip_add},
      {.name = "vip del",
       .synopsis = "VIP",
       .summary = "delete a VIP and its backends",
       .details = "Example:\n  xlbctl vip del 198.18.200.1:80/tcp\n",
       .min_args = 1,
       .max_args = 1,
       .handler = handlers::vip_del},
      {.name = "backend list",
       .synopsis = "VIP",
       .summary = "a VIP's backends: weight, state, ring slots, traffic",
       .details = "Example:\n  xlbctl backend list 198.18.200.1:80/tcp\n",
       .min_args = 1,
       .max_args = 1,
       .handler = handlers::backend_list},
      {.name = "backend add",
       .synopsis = "VIP ADDRESS",
       .summary = "add a backend to a VIP",
       .details = "Examples:\n"
                  "  xlbctl backend add 198.18.200.1:80/tcp 198.18.3.11 --weight 3\n"
                  "  xlbctl backend add [2001:db8:200::1]:443/udp 2001:db8:3::11\n",
       .flags = {{"weight", "N", "relative share of new flows (default 1; 0: none)"},
                 {"state", "STATE", "active (default), draining or disabled"}},
       .min_args = 2,
       .max_args = 2,
       .handler = handlers::backend_add},
      {.name = "backend del",
       .synopsis = "VIP ADDRESS",
       .summary = "remove a backend from a VIP (its flows move: drain it first)",
       .details = "Example:\n  xlbctl backend del 198.18.200.1:80/tcp 198.18.3.11\n",
       .min_args = 2,
       .max_args = 2,
       .handler = handlers::backend_del},
      {.name = "backend set",
       .synopsis = "VIP ADDRESS (--weight N | --drain | --undrain | --disable)",
       .summary = "change a backend's weight or state",
       .details =
           "--drain: no new flows; established flows stay on it (connection table) until they\n"
           "end. --undrain: takes new flows again. --disable: out of service (the same for the\n"
           "data plane as draining, but says the operator took it out). --weight may go with\n"
           "one of them.\n\nExamples:\n"
           "  xlbctl backend set 198.18.200.1:80/tcp 198.18.3.11 --drain\n"
           "  xlbctl backend set 198.18.200.1:80/tcp 198.18.3.11 --weight 5 --undrain\n",
       .flags = {{"weight", "N", "new weight"},
                 {"drain", "", "state draining: no new flows"},
                 {"undrain", "", "state active: new flows again"},
                 {"disable", "", "state disabled"}},
       .min_args = 2,
       .max_args = 2,
       .handler = handlers::backend_set},
      {.name = "stats",
       .synopsis = "[VIP]",
       .summary = "packets, bytes, rates and share of the VIP per backend",
       .details =
           "Rates come from two samples --interval apart (default 1s; --interval 0: counters\n"
           "only, no wait). --watch redraws the screen every interval with a rate bar per\n"
           "backend (its part of the VIP's packet rate) until Ctrl-C or --count samples; with -j\n"
           "it prints one JSON document per line instead.\n\nExamples:\n"
           "  xlbctl stats\n"
           "  xlbctl stats 198.18.200.1:80/tcp --watch --interval 2s\n"
           "  xlbctl -j stats --interval 0\n",
       .flags = {{"watch", "", "keep sampling and redrawing"},
                 {"interval", "DURATION", "time between samples: 1s (default), 500ms, 2m"},
                 {"count", "N", "with --watch: stop after N samples"}},
       .max_args = 1,
       .handler = handlers::stats},
      {.name = "health",
       .synopsis = "[VIP]",
       .summary = "backend states and health: last result, since, rise/fall progress",
       .details =
           "Per backend: the operator's state, what the health checks see (unchecked, pending,\n"
           "up, down), the weight in the ring now, rise/fall progress (good checks of those\n"
           "needed to come up / failed checks of those needed to go down), checks run and\n"
           "failed, how long since the health last changed, and the last check's result.\n\n"
           "Example:\n  xlbctl health 198.18.200.1:80/tcp\n",
       .max_args = 1,
       .handler = handlers::health},
      {.name = "plan",
       .synopsis = "VIP (--remove B | --add B [--weight N] | --set B (--weight N | --drain | "
                   "--undrain))",
       .summary = "what a backend change would move, without making it",
       .details =
           "Prints each backend's ring slots now and after the change, and the fraction of new\n"
           "flows (and of flows without a connection-table entry) that would land on another\n"
           "backend. --remove may be combined with --add or --set. Nothing is changed.\n\n"
           "Examples:\n"
           "  xlbctl plan 198.18.200.1:80/tcp --remove 198.18.3.11\n"
           "  xlbctl plan 198.18.200.1:80/tcp --add 198.18.3.14 --weight 2\n"
           "  xlbctl plan 198.18.200.1:80/tcp --set 198.18.3.12 --drain\n",
       .flags = {{"remove", "B", "take backend B out"},
                 {"add", "B", "add backend B"},
                 {"set", "B", "change backend B (with --weight, --drain or --undrain)"},
                 {"weight", "N", "the weight of the --add or --set backend"},
                 {"drain", "", "with --set: plan a drain"},
                 {"undrain", "", "with --set: plan an undrain"}},
       .min_args = 1,
       .max_args = 1,
       .handler = handlers::plan},
      {.name = "lookup",
       .synopsis = "VIP --from ADDRESS:PORT",
       .summary = "which backend serves the flow from a client now",
       .details =
           "xlbd answers with the data plane's own decision: the connection-table entry of the\n"
           "flow if there is one, else the Maglev ring slot of the flow's hash.\n\nExamples:\n"
           "  xlbctl lookup 198.18.200.1:80/tcp --from 198.18.1.2:40000\n"
           "  xlbctl lookup [2001:db8:200::1]:80/tcp --from [2001:db8:1::2]:40000\n",
       .flags = {{"from", "ADDRESS:PORT", "the client's address and source port (required)"}},
       .min_args = 1,
       .max_args = 1,
       .handler = handlers::lookup},
      {.name = "events push",
       .synopsis = "FILE|-",
       .summary = "send service-discovery events to a push source (POST /v1/events)",
       .details =
           "FILE (or - for stdin) holds the body of POST /v1/events (docs/discovery.md): an\n"
           "object with \"events\" (and optionally \"source\", \"replace\"), or just the list\n"
           "of events. The events are checked first: with any bad event nothing is applied and\n"
           "every bad one is named. Accepted events reach the data plane within the debounce\n"
           "window. xlbd needs a discovery source of type push.\n\nExamples:\n"
           "  xlbctl events push changes.json\n"
           "  echo '[{\"kind\":\"remove_backend\",\"vip\":\"198.18.200.1:80/tcp\",\n"
           "         \"backend\":{\"address\":\"198.18.3.11\"}}]' | xlbctl events push -\n"
           "  xlbctl events push --source hooks --replace registry-dump.json\n",
       .flags = {{"source", "NAME", "the push source (needed when several are configured)"},
                 {"replace", "", "the events are the source's whole content (full sync)"}},
       .min_args = 1,
       .max_args = 1,
       .handler = handlers::events_push},
      {.name = "help",
       .synopsis = "[COMMAND]",
       .summary = "this overview, or a command's flags and examples",
       .details = "Examples:\n  xlbctl help\n  xlbctl help backend set\n",
       .max_args = 2,
       .handler = handlers::help},
  };
  return kCommands;
}

// Words of a command name: "backend set" -> {"backend", "set"}.
std::vector<std::string_view> name_words(std::string_view name) {
  std::vector<std::string_view> out;
  while (!name.empty()) {
    auto sp = name.find(' ');
    out.push_back(name.substr(0, sp));
    if (sp == std::string_view::npos) break;
    name = name.substr(sp + 1);
  }
  return out;
}

// Commands whose name starts with `group` ("vip"), for a group's help and for errors.
std::vector<const Command*> group_commands(std::string_view group) {
  std::vector<const Command*> out;
  for (const auto& c : table()) {
    auto words = name_words(c.name);
    if (words.size() > 1 && words[0] == group) out.push_back(&c);
  }
  return out;
}

std::string usage_line(const Command& c) {
  std::string line = "xlbctl " + std::string(c.name);
  if (!c.synopsis.empty()) line += " " + std::string(c.synopsis);
  bool in_synopsis = c.synopsis.find("--") != std::string_view::npos;
  if (!c.flags.empty() && !in_synopsis) line += " [FLAGS]";
  return line;
}

std::atomic<bool> g_interrupted{false};

}  // namespace

Env default_env(std::ostream& out, std::ostream& err) {
  return Env{
      .out = out,
      .err = err,
      .sleep =
          [](std::chrono::milliseconds d) {
            // In slices, so that Ctrl-C ends a long --interval at once.
            auto until = std::chrono::steady_clock::now() + d;
            while (!g_interrupted && std::chrono::steady_clock::now() < until) {
              auto left = until - std::chrono::steady_clock::now();
              std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
                  left, std::chrono::milliseconds(50)));
            }
          },
      .now = [] { return std::chrono::steady_clock::now(); },
      .interrupted = [] { return g_interrupted.load(); },
      .catch_interrupts =
          [] {
            struct sigaction sa {};
            sa.sa_handler = [](int) { g_interrupted = true; };
            // No SA_RESTART: a request in progress fails with EINTR rather than keep the user
            // waiting; SA_RESETHAND: a second Ctrl-C kills.
            sa.sa_flags = SA_RESETHAND;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGINT, &sa, nullptr);
          },
  };
}

std::span<const Command> commands() { return table(); }

const Command* find_command(std::span<const std::string> words, size_t* name_words_out) {
  const Command* best = nullptr;
  size_t best_len = 0;
  for (const auto& c : table()) {
    auto words_of = name_words(c.name);
    if (words_of.size() > words.size() || words_of.size() <= best_len) continue;
    bool match = true;
    for (size_t i = 0; i < words_of.size(); i++) match &= words[i] == words_of[i];
    if (match) {
      best = &c;
      best_len = words_of.size();
    }
  }
  if (name_words_out != nullptr) *name_words_out = best_len;
  return best;
}

std::string group_help(std::string_view group) {
  auto members = group_commands(group);
  if (members.empty()) return "";
  std::string out = "xlbctl " + std::string(group) + " commands:\n";
  for (const Command* c : members) {
    out += "  " + usage_line(*c) + "\n      " + std::string(c->summary) + "\n";
  }
  return out;
}

std::string general_help() {
  std::string out =
      "xlbctl: the operator's CLI of xlb; talks to xlbd over its local API.\n\n"
      "usage: xlbctl [GLOBAL FLAGS] COMMAND [ARGS] [FLAGS]\n\ncommands:\n";
  size_t width = 0;
  for (const auto& c : table()) width = std::max(width, c.name.size() + 1 + c.synopsis.size());
  width = std::min<size_t>(width, 28);
  for (const auto& c : table()) {
    std::string left = std::string(c.name);
    if (!c.synopsis.empty()) left += " " + std::string(c.synopsis);
    if (left.size() > width) {
      out += "  " + left + "\n  " + std::string(width, ' ') + "  " + std::string(c.summary) + "\n";
    } else {
      out +=
          "  " + left + std::string(width - left.size() + 2, ' ') + std::string(c.summary) + "\n";
    }
  }
  out +=
      "\nglobal flags (anywhere before \"--\"):\n"
      "  --socket PATH       xlbd's API socket (default /run/xlb/xlbd.sock; root only)\n"
      "  --tcp HOST:PORT     use xlbd's TCP listener instead (api_tcp_listen)\n"
      "  --token-file PATH   the bearer token for --tcp (api_token_file)\n"
      "  --timeout SECONDS   per request (default 10)\n"
      "  -j, --json          print JSON (field names: docs/cli.md)\n"
      "  -h, --help          help; with a command, that command's help\n\n" +
      std::string(kVipSyntax) +
      "\nexit status: 0 done, 1 refused by xlbd, 2 usage error, 3 xlbd unreachable\n"
      "Run 'xlbctl help COMMAND' for a command's flags and examples.\n";
  return out;
}

std::string command_help(const Command& c) {
  std::string out = "usage: " + usage_line(c) + "\n\n" + std::string(c.summary) + ".\n";
  if (!c.flags.empty()) {
    out += "\nflags:\n";
    size_t width = 0;
    for (const auto& f : c.flags) width = std::max(width, f.name.size() + f.value.size() + 3);
    for (const auto& f : c.flags) {
      std::string left = "--" + std::string(f.name);
      if (!f.value.empty()) left += " " + std::string(f.value);
      out += "  " + left + std::string(width - left.size() + 2, ' ') + std::string(f.help) + "\n";
    }
  }
  if (c.synopsis.find("VIP") != std::string_view::npos) out += "\n" + std::string(kVipSyntax);
  if (!c.details.empty()) out += "\n" + std::string(c.details);
  return out;
}

int report_error(const xlb::Error& error, std::string_view command, const Api& api, Env& env) {
  const std::string who = command.empty() ? "xlbctl" : "xlbctl " + std::string(command);
  if (is_usage_error(error)) {
    env.err << who << ": " << error.message << "\n";
    size_t n = 0;
    std::vector<std::string> words;
    for (auto w : name_words(command)) words.emplace_back(w);
    if (const Command* c = find_command(words, &n); c != nullptr && !command.empty()) {
      env.err << "usage: " << usage_line(*c) << "  (xlbctl help " << c->name << ")\n";
    }
    return kExitUsage;
  }
  if (xlb::api::is_connection_error(error)) {
    env.err << who << ": cannot reach xlbd: " << error.to_string() << "\n";
    if (api.describe().starts_with("tcp:")) {
      env.err << "hint: is xlbd running? is --tcp right? does xlbd listen on TCP "
                 "(api_tcp_listen)?\n";
    } else {
      env.err << "hint: is xlbd running? is --socket right? are you root?\n";
    }
    return kExitUnreachable;
  }
  if (int status = xlb::api::http_status(error); status != 0) {
    env.err << who << ": refused by xlbd (" << error.code.message() << "): " << error.message
            << "\n";
    if (status == 401) env.err << "hint: check --token-file (xlbd's api_token_file)\n";
    return kExitRefused;
  }
  env.err << who << ": " << error.to_string() << "\n";
  return kExitRefused;
}

int run(std::span<const std::string> words, bool help, const Options& options, Api& api, Env& env) {
  if (words.empty()) {
    if (help) {
      env.out << general_help();
      return kExitOk;
    }
    env.err << "xlbctl: a command is missing\n\n" << general_help();
    return kExitUsage;
  }
  size_t n = 0;
  const Command* command = find_command(words, &n);
  if (command == nullptr) {
    if (std::string group = group_help(words[0]); !group.empty()) {
      if (help && words.size() == 1) {
        env.out << group;
        return kExitOk;
      }
      std::string msg =
          words.size() == 1 ? "a subcommand is missing" : "unknown subcommand '" + words[1] + "'";
      env.err << "xlbctl " << words[0] << ": " << msg << "\n" << group;
      return kExitUsage;
    }
    env.err << "xlbctl: unknown command '" << words[0] << "' (xlbctl help lists them)\n";
    return kExitUsage;
  }
  if (help) {
    env.out << command_help(*command);
    return kExitOk;
  }
  auto parsed = parse_args(words.subspan(n), command->flags);
  if (!parsed) return report_error(parsed.error(), command->name, api, env);
  const size_t count = parsed->positionals.size();
  if (count < command->min_args || count > command->max_args) {
    std::string msg;
    if (count < command->min_args) {
      msg = "missing argument (want " + std::string(command->synopsis) + ")";
    } else {
      msg = "unexpected argument '" + parsed->positionals[command->max_args] + "'";
    }
    return report_error(usage_error(msg), command->name, api, env);
  }
  Call call{
      .command = *command, .args = std::move(*parsed), .api = api, .options = options, .env = env};
  xlb::Status st = command->handler(call);
  if (!st) return report_error(st.error(), command->name, api, env);
  return kExitOk;
}

}  // namespace xlbctl
