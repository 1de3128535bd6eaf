// SPDX-License-Identifier: Apache-2.0
#include "xlb/core/spelling.h"

#include <algorithm>

namespace xlb {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) row[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& candidates) {
  std::string_view suggestion;
  size_t best = 3;  // near misses only
  for (auto c : candidates) {
    if (size_t d = edit_distance(name, c); d < best) {
      best = d;
      suggestion = c;
    }
  }
  return suggestion.empty() ? "" : "did you mean '" + std::string(suggestion) + "'? ";
}

}  // namespace xlb
