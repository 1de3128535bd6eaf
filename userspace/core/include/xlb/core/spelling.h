// SPDX-License-Identifier: Apache-2.0
// Near-miss suggestions for names the user mistyped (config keys, JSON fields): "did you mean
// 'vips'?" for "vip".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace xlb {

// Levenshtein distance (insertions, deletions, substitutions).
size_t edit_distance(std::string_view a, std::string_view b);

// "did you mean 'X'? " for the candidate closest to `name` when it is a near miss (distance
// 1 or 2: typos, singular/plural), else "".
std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& candidates);

}  // namespace xlb
