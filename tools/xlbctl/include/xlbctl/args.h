// SPDX-License-Identifier: Apache-2.0
// Command-line words of xlbctl, before any meaning is given to them.
//
// gflags owns the global flags (--socket, --json, ...), but it knows nothing of subcommands and
// rejects flags it has not registered. So the words go through two steps:
//   1. split_global_flags() picks out the global flags (anywhere before "--"), plus -j (short
//      for --json) and -h/--help; everything else is the command's.
//   2. parse_args() parses a command's words against that command's flag table.
// Both return usage errors (is_usage_error()) for the caller to turn into exit status 2.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xlb/core/result.h"

namespace xlbctl {

// Errors in what the user typed (exit status 2), told apart from refusals and I/O errors.
xlb::Error usage_error(std::string message);
bool is_usage_error(const xlb::Error& error);

// One flag of a command: "--weight N" when `value` names the argument, "--drain" when it is
// empty (a switch).
struct FlagSpec {
  std::string_view name;   // without dashes: "ring-size"
  std::string_view value;  // metavariable for help ("N"); empty: a switch
  std::string_view help;
};

// A command's words after parse_args(): positionals in order and the flags given.
struct ParsedArgs {
  std::vector<std::string> positionals;
  std::map<std::string, std::string, std::less<>> flags;  // switches map to ""

  bool has(std::string_view flag) const { return flags.find(flag) != flags.end(); }
  std::optional<std::string> value(std::string_view flag) const;
};

// Accepts --flag, --flag VALUE and --flag=VALUE for the flags in `specs`; "--" ends the flags.
// Refused: unknown flags (the message lists the accepted ones), a flag given twice, a missing
// value, a value given to a switch, single-dash words other than "-".
xlb::Result<ParsedArgs> parse_args(std::span<const std::string> words,
                                   std::span<const FlagSpec> specs);

// Answers whether `name` (underscores, as gflags spells it) is a global flag and, if so,
// whether it is a boolean (which never takes the next word as its value).
using GlobalFlagLookup = std::function<std::optional<bool>(std::string_view name)>;

struct SplitArgs {
  std::vector<std::pair<std::string, std::string>> globals;  // gflags name, value
  std::vector<std::string> rest;                             // command words, in order
  bool help = false;                                         // -h or --help was given
};

// Global flags may stand anywhere before "--" (`xlbctl vip list -j`, `xlbctl -j vip list`);
// dashes in their names are accepted for underscores (--token-file), --noFLAG negates a
// boolean. `-j` is --json.
xlb::Result<SplitArgs> split_global_flags(std::span<const std::string> words,
                                          const GlobalFlagLookup& lookup);

}  // namespace xlbctl
