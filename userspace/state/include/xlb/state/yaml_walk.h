// SPDX-License-Identifier: Apache-2.0
// The frame of xlbd's configuration parsers (the file in state/src/config.cpp, the `discovery:`
// section in discovery/src/config.cpp): the document is walked node by node, every map is a
// table of keys, and the first problem is returned as
//   SOURCE:LINE:COL: path.in.schema: what is wrong (what to do)
// Values are read as text by the parsers themselves (no yaml-cpp as<T>(), whose conversions
// throw without a location).
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/core/result.h"

namespace xlb::state::yaml {

// A value being parsed: its path in the schema and where the file wrote it.
struct Field {
  std::string path;  // "vips[0].backends[1].weight"; empty for the document itself
  YAML::Mark key_mark = YAML::Mark::null_mark();  // null for list items and the document
  YAML::Node value;

  // yaml-cpp marks an empty value at the next token, often on the next line: point at the key.
  YAML::Mark mark() const {
    if (value.IsNull() && !key_mark.is_null()) return key_mark;
    return value.Mark();
  }
};

// One key of a map: its parser, and whether the map must have it.
struct Key {
  std::string_view name;
  std::function<Status(const Field&)> parse;
  bool required = false;
};

std::string join(const std::string& path, std::string_view key);  // "a.b"
std::string item(const std::string& path, size_t index);           // "a[3]"
int line_of(const YAML::Mark& mark);                                // 1-based
// What a node holds, for "expected X, got Y": 'text', a list, a map, no value.
std::string describe(const YAML::Node& node);

// Locates errors in one source and walks its maps.
class Walker {
 public:
  explicit Walker(std::string source) : source_(std::move(source)) {}

  Error fail(const YAML::Mark& mark, const std::string& path, const std::string& what) const;

  // Calls each key's parser in file order. Errors: not a map, a key that is not a plain word,
  // an unknown key (with the allowed ones and a near-miss suggestion), a key given twice (with
  // the line of the first), YAML merge keys, a required key missing. `example` shows a good map.
  Status walk_map(const Field& f, const std::vector<Key>& keys, std::string_view example) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

}  // namespace xlb::state::yaml
