// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/merge.h"

#include <algorithm>
#include <set>

#include "xlb/state/config.h"

namespace xlb::discovery {

MergeResult merge(const state::DesiredState& configured, const Snapshot& discovered,
                  const state::Limits& limits) {
  MergeResult out;
  out.state = configured;
  std::set<std::string> names;
  size_t memberships = 0;
  for (const auto& [key, vip] : configured.vips) {
    if (!vip.name.empty()) names.insert(vip.name);
    memberships += vip.backends.size();
  }
  const size_t max_per_vip = state::config_bounds::kMaxBackendsPerVip;

  for (const auto& [key, found] : discovered.vips) {
    auto cfg = out.state.vips.find(key);
    if (cfg != out.state.vips.end()) {
      // A configured VIP: settings and configured backends stay; discovery adds members.
      state::VipSpec& vip = cfg->second;
      if (found.spec &&
          !(found.spec->name == vip.name && found.spec->hash == vip.hash &&
            found.spec->no_lru == vip.no_lru && found.spec->gue == vip.gue &&
            found.spec->icmp_too_big == vip.icmp_too_big &&
            found.spec->no_rate_guard == vip.no_rate_guard &&
            found.spec->ring_size == vip.ring_size && found.spec->all_down == vip.all_down)) {
        out.notes.push_back(key.to_string() + ": settings from " + found.spec_owner +
                            " ignored, the configuration owns this VIP");
      }
      bool added = false;
      for (const auto& b : found.backends) {
        if (vip.find_backend(b.spec.address) != nullptr) continue;  // configured entry wins
        if (vip.backends.size() >= max_per_vip || memberships >= limits.max_backends) {
          out.notes.push_back(key.to_string() + ": backend " + b.spec.address.to_string() +
                              " from " + b.owner + " left out: over the backend limit");
          continue;
        }
        vip.backends.push_back(b.spec);
        memberships++;
        added = true;
      }
      if (added) {
        std::sort(vip.backends.begin(), vip.backends.end(),
                  [](const auto& a, const auto& b) { return a.address < b.address; });
      }
      continue;
    }
    if (out.state.vips.size() >= limits.max_vips) {
      out.notes.push_back(key.to_string() +
                          " left out: over limits.max_vips = " + std::to_string(limits.max_vips));
      continue;
    }
    state::VipSpec vip;
    if (found.spec) vip = *found.spec;
    vip.key = key;
    vip.backends.clear();
    if (!vip.name.empty() && !names.insert(vip.name).second) {
      out.notes.push_back(key.to_string() + ": name '" + vip.name + "' from " + found.spec_owner +
                          " dropped, another VIP has it");
      vip.name.clear();
    }
    // found.backends is sorted by address, so what is left out is deterministic.
    for (const auto& b : found.backends) {
      if (vip.backends.size() >= max_per_vip || memberships >= limits.max_backends) {
        out.notes.push_back(key.to_string() + ": backend " + b.spec.address.to_string() + " from " +
                            b.owner + " left out: over the backend limit");
        continue;
      }
      vip.backends.push_back(b.spec);
      memberships++;
    }
    out.state.vips.emplace(key, std::move(vip));
  }
  return out;
}

}  // namespace xlb::discovery
