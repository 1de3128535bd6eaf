// SPDX-License-Identifier: Apache-2.0
// Part of suite "maglev": the cost of pushing a changed ring into the real BPF map on this
// kernel, whole (new inner map, batch fill, atomic swap in the outer map) against only the
// changed slots (batch update in place), for one backend removed from 100 (M = 65537) and
// from 1000 (auto M). The reconciler uses whichever is cheaper for the change at hand.
#include <chrono>
#include <cstdio>
#include <utility>

#include "bench.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/maglev/maglev.h"

namespace xlb::bench {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
      .count();
}

std::vector<maglev::Backend> backends(uint32_t n) {
  std::vector<maglev::Backend> out;
  for (uint32_t i = 0; i < n; i++) {
    out.push_back({.id = "198.18." + std::to_string(3 + i / 250) + "." + std::to_string(1 + i % 250),
                   .weight = 1,
                   .index = i});
  }
  return out;
}

}  // namespace

int run_ring_push(const Options& opts) {
  auto lb = dataplane::Balancer::load({.flows_per_cpu = 1024});
  if (!lb) {
    std::fprintf(stderr, "xlb-bench maglev: %s\n", lb.error().to_string().c_str());
    return 1;
  }
  struct Case {
    const char* name;
    uint32_t n;
  } cases[] = {{"n100_m65537", 100}, {"n1000_auto", 1000}};
  for (const auto& c : cases) {
    auto all = backends(c.n);
    auto size = maglev::choose_ring_size(c.n, std::nullopt);
    if (!size) return 1;
    const uint32_t m = size->size;
    auto before = maglev::build(all, m, 0x5eed);
    auto fewer = all;
    fewer.erase(fewer.begin() + c.n / 2);
    auto after = maglev::build(fewer, m, 0x5eed);
    if (!before || !after) return 1;
    auto d = maglev::diff(*before, *after);
    std::vector<std::pair<uint32_t, uint32_t>> changes;
    for (const auto& ch : d.changes) changes.emplace_back(ch.slot, ch.new_value);

    std::vector<double> whole, patch;
    const int reps = std::max(1L, scaled(opts, 20, 1));
    for (int r = 0; r < opts.runs * reps; r++) {
      auto t0 = std::chrono::steady_clock::now();
      if (auto st = (*lb)->set_ring(0, r % 2 ? *after : *before); !st) {
        std::fprintf(stderr, "xlb-bench maglev: %s\n", st.error().to_string().c_str());
        return 1;
      }
      whole.push_back(ms_since(t0));
    }
    // Patch in place: start from `before`, apply the change, then undo it (same size).
    if (auto st = (*lb)->set_ring(0, *before); !st) return 1;
    std::vector<std::pair<uint32_t, uint32_t>> undo;
    for (const auto& ch : d.changes) undo.emplace_back(ch.slot, ch.old_value);
    for (int r = 0; r < opts.runs * reps; r++) {
      auto t0 = std::chrono::steady_clock::now();
      if (auto st = (*lb)->update_ring(0, r % 2 ? undo : changes); !st) {
        std::fprintf(stderr, "xlb-bench maglev: %s\n", st.error().to_string().c_str());
        return 1;
      }
      patch.push_back(ms_since(t0));
    }
    auto ring = (*lb)->ring(0);
    if (!ring || *ring != (opts.runs * reps % 2 ? *after : *before)) {
      std::fprintf(stderr, "xlb-bench maglev: ring read back differs from what was pushed\n");
      return 1;
    }
    emit(opts, "maglev", c.name, "push_all_ms", median(whole), "ms",
         {{"slots", m}, {"runs", whole.size()}});
    emit(opts, "maglev", c.name, "push_changed_ms", median(patch), "ms",
         {{"slots_changed", changes.size()}, {"runs", patch.size()}});
  }
  return 0;
}

}  // namespace xlb::bench
