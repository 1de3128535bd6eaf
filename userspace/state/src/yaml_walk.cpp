// SPDX-License-Identifier: Apache-2.0
#include "xlb/state/yaml_walk.h"

#include <algorithm>
#include <map>

#include "xlb/core/spelling.h"

namespace xlb::state::yaml {

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string item(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

int line_of(const YAML::Mark& mark) { return mark.is_null() ? 1 : mark.line + 1; }

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "no value";
  }
}

Error Walker::fail(const YAML::Mark& mark, const std::string& path,
                   const std::string& what) const {
  std::string where = source_ + ":" + std::to_string(line_of(mark)) + ":" +
                      std::to_string(mark.is_null() ? 1 : mark.column + 1) + ": ";
  return Error::invalid(where + (path.empty() ? "" : path + ": ") + what);
}

Status Walker::walk_map(const Field& f, const std::vector<Key>& keys,
                        std::string_view example) const {
  if (!f.value.IsMap()) {
    return fail(f.mark(), f.path,
                "expected a map, got " + describe(f.value) + " (" + std::string(example) + ")");
  }
  std::map<std::string, int> seen;  // key -> line
  for (auto it = f.value.begin(); it != f.value.end(); ++it) {
    // Copies: the iterator hands out a proxy temporary, and Nodes are cheap shared handles.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      return fail(key.Mark(), f.path, "a key must be a plain word, got " + describe(key));
    }
    const std::string name = key.Scalar();
    const std::string path = join(f.path, name);
    auto spec =
        std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
    if (spec == keys.end() && name == "<<") {
      return fail(key.Mark(), path, "YAML merge keys are not supported (write the keys out)");
    }
    if (spec == keys.end()) {
      std::vector<std::string_view> names;
      std::string allowed;
      for (const auto& k : keys) {
        names.push_back(k.name);
        allowed += (allowed.empty() ? "" : ", ") + std::string(k.name);
      }
      return fail(key.Mark(), path,
                  "unknown key (" + did_you_mean(name, names) + "allowed: " + allowed + ")");
    }
    if (auto [first, fresh] = seen.emplace(name, line_of(key.Mark())); !fresh) {
      return fail(key.Mark(), path,
                  "given twice, first on line " + std::to_string(first->second) + " (keep one)");
    }
    XLB_TRY(spec->parse(Field{path, key.Mark(), value}));
  }
  for (const auto& k : keys) {
    if (k.required && !seen.contains(std::string(k.name))) {
      return fail(
          f.mark(), f.path,
          "missing required key '" + std::string(k.name) + "' (" + std::string(example) + ")");
    }
  }
  return ok_status();
}

}  // namespace xlb::state::yaml
