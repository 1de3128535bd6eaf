// SPDX-License-Identifier: Apache-2.0
#include "xlbctl/args.h"

#include <algorithm>

namespace xlbctl {
namespace {

class UsageCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "xlbctl.usage"; }
  std::string message(int) const override { return "usage error"; }
};

const std::error_category& usage_category() {
  static const UsageCategory category;
  return category;
}

std::string accepted_list(std::span<const FlagSpec> specs) {
  if (specs.empty()) return "this command takes no flags";
  std::string out = "accepted: ";
  for (size_t i = 0; i < specs.size(); i++) {
    out += (i ? ", --" : "--") + std::string(specs[i].name);
  }
  return out;
}

std::string underscored(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

}  // namespace

xlb::Error usage_error(std::string message) {
  return xlb::Error{std::error_code(1, usage_category()), std::move(message)};
}

bool is_usage_error(const xlb::Error& error) { return error.code.category() == usage_category(); }

std::optional<std::string> ParsedArgs::value(std::string_view flag) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return std::nullopt;
  return it->second;
}

xlb::Result<ParsedArgs> parse_args(std::span<const std::string> words,
                                   std::span<const FlagSpec> specs) {
  ParsedArgs out;
  bool flags_done = false;
  for (size_t i = 0; i < words.size(); i++) {
    const std::string& w = words[i];
    if (flags_done || w == "-" || w.empty() || w[0] != '-') {
      out.positionals.push_back(w);
      continue;
    }
    if (w == "--") {
      flags_done = true;
      continue;
    }
    if (w.size() < 3 || w[1] != '-') {
      return usage_error("unknown flag '" + w + "': flags are written --NAME (" +
                         accepted_list(specs) + ")");
    }
    std::string_view body = std::string_view(w).substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      inline_value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) {
      return s.name == body || underscored(s.name) == body;
    });
    if (spec == specs.end()) {
      return usage_error("unknown flag --" + std::string(body) + " (" + accepted_list(specs) + ")");
    }
    const std::string name(spec->name);
    if (out.has(name)) return usage_error("--" + name + " given twice");
    if (spec->value.empty()) {
      if (inline_value) return usage_error("--" + name + " takes no value");
      out.flags.emplace(name, "");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= words.size()) {
        return usage_error("--" + name + " needs a value (--" + name + " " +
                           std::string(spec->value) + ")");
      }
      inline_value = words[++i];
    }
    out.flags.emplace(name, *inline_value);
  }
  return out;
}

xlb::Result<SplitArgs> split_global_flags(std::span<const std::string> words,
                                          const GlobalFlagLookup& lookup) {
  SplitArgs out;
  for (size_t i = 0; i < words.size(); i++) {
    const std::string& w = words[i];
    if (w == "--") {
      // Everything after belongs to the command, "--" included (parse_args needs it).
      out.rest.insert(out.rest.end(), words.begin() + static_cast<ptrdiff_t>(i), words.end());
      break;
    }
    if (w == "-h" || w == "--help" || w == "-help") {
      out.help = true;
      continue;
    }
    if (w == "-j") {
      out.globals.emplace_back("json", "true");
      continue;
    }
    if (w.size() < 2 || w[0] != '-') {
      out.rest.push_back(w);
      continue;
    }
    // gflags accepts both -name and --name.
    std::string_view body = std::string_view(w).substr(w[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    std::string name = underscored(body);
    std::optional<bool> is_bool = lookup(name);
    if (!is_bool && !value && name.starts_with("no")) {
      // --nojson: the negation of a boolean.
      std::optional<bool> negated = lookup(name.substr(2));
      if (negated && *negated) {
        out.globals.emplace_back(name.substr(2), "false");
        continue;
      }
    }
    if (!is_bool) {
      out.rest.push_back(w);  // the command's flag, or an unknown one it will report
      continue;
    }
    if (!value) {
      if (*is_bool) {
        value = "true";
      } else if (i + 1 < words.size()) {
        value = words[++i];
      } else {
        return usage_error("--" + std::string(body) + " needs a value");
      }
    }
    out.globals.emplace_back(std::move(name), std::move(*value));
  }
  return out;
}

}  // namespace xlbctl
