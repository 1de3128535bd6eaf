// SPDX-License-Identifier: Apache-2.0
// xlb-bench suite "maglev": how fair, how stable and how fast the ring builder is.
//
//   balance_max_over_mean  largest backend share / mean share, equal weights (1.0 is perfect);
//                          the smallest share / mean is recorded next to it as "min_over_mean",
//                          and "gain_per_change" = M / N^2, the slots a one-backend change moves
//                          onto each other backend: below 4 the builder opens a band around each
//                          share (maglev.h), so N=1000 / auto M is reported without a target
//   disruption_ratio       slots that changed / slots of the removed (or added) backend, mean
//                          over several choices of that backend, worst in "worst" (1.0 is perfect).
//                          weight_double_*: one backend's weight goes from 1 to 2, and the ratio
//                          is slots that changed / slots that backend gained. The ring size stays
//                          that of the case (M is sticky per VIP; only initial sizing uses 100x).
//                          remove_one_sweep_n*: disruption vs N (remove one of N, ring size as
//                          choose_ring_size picks it), classic Maglev's ratio on the same
//                          backends alongside as "maglev_turns" (the reference line)
//   build_ms, diff_ms      wall time of one build() / diff(), median of opts.runs runs
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench.h"
#include "xlb/maglev/maglev.h"

namespace xlb::bench {
namespace {

namespace mg = xlb::maglev;

constexpr char kSuite[] = "maglev";
constexpr uint32_t kSeed = 0x5eed;
// Acceptance bounds of issue 3.
constexpr double kBalanceTarget = 1.002;
constexpr double kDisruptionTarget = 1.6;
constexpr double kBuildMsTarget = 20.0;
// Backends removed or added, one at a time, per disruption case.
constexpr size_t kDisruptionTrials = 10;
// Backend counts of the disruption-vs-N sweep (ring size: choose_ring_size's default for N).
constexpr size_t kSweepBackends[] = {10, 50, 100, 500, 1000};

// Identities from the lab's backend networks (design.md section 4).
std::string backend_id(size_t i) {
  if (i < 250) return "198.18.3." + std::to_string(i + 1);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "2001:db8:3::%zx", i + 1);
  return buf;
}

std::vector<mg::Backend> make_backends(size_t n) {
  std::vector<mg::Backend> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(mg::Backend{.id = backend_id(i), .weight = 1, .index = static_cast<uint32_t>(i)});
  }
  return out;
}

// Slots per map index (indices are 0..n-1 in this suite).
std::vector<uint32_t> slot_counts(const std::vector<uint32_t>& ring, size_t n) {
  std::vector<uint32_t> counts(n, 0);
  for (uint32_t v : ring) {
    if (v < n) ++counts[v];
  }
  return counts;
}

// A case's inputs and reference ring.
struct Setup {
  std::string name;
  std::vector<mg::Backend> backends;
  uint32_t ring_size = 0;
  std::vector<uint32_t> ring;
};

bool make_setup(const std::string& name, size_t n, std::optional<uint32_t> requested, Setup& out) {
  auto rs = mg::choose_ring_size(n, requested);
  if (!rs.ok()) {
    std::fprintf(stderr, "maglev %s: %s\n", name.c_str(), rs.error().to_string().c_str());
    return false;
  }
  out.name = name;
  out.backends = make_backends(n);
  out.ring_size = rs->size;
  auto ring = mg::build(out.backends, out.ring_size, kSeed);
  if (!ring.ok()) {
    std::fprintf(stderr, "maglev %s: %s\n", name.c_str(), ring.error().to_string().c_str());
    return false;
  }
  out.ring = std::move(ring).value();
  return true;
}

void emit_balance(const Options& opts, const Setup& s) {
  const size_t n = s.backends.size();
  const auto counts = slot_counts(s.ring, n);
  const double mean = static_cast<double>(s.ring_size) / n;
  const double max = *std::max_element(counts.begin(), counts.end());
  const double min = *std::min_element(counts.begin(), counts.end());
  const double gain = mean / n;
  nlohmann::json extra{// Whole slots bound what any builder can reach: ceil(M/N) / (M/N).
                       {"best_possible", std::ceil(mean) / mean},
                       {"min_over_mean", min / mean},
                       {"gain_per_change", gain},
                       {"ring_size", s.ring_size},
                       {"backends", n}};
  // The goal of 1.002 is for N=100, M=65537 (gain 6.6, tight quotas). Where the gain is below 4
  // the builder trades balance for stability by design, and issue 3 only asks for the number.
  if (gain >= 4) extra["target"] = kBalanceTarget;
  emit(opts, kSuite, s.name, "balance_max_over_mean", max / mean, "ratio", std::move(extra));
}

// What a disruption case does to the reference backends, one backend at a time.
enum class Change {
  kRemove,        // remove one backend; ratio denominator: its slots before
  kAdd,           // add one backend of weight 1; denominator: its slots after
  kDoubleWeight,  // weight 1 -> 2 for one backend; denominator: slots it gained
};

// A ring population: backends and ring size in, ring out.
using Populate =
    std::function<Result<std::vector<uint32_t>>(const std::vector<mg::Backend>&, uint32_t)>;

Result<std::vector<uint32_t>> banded_race(const std::vector<mg::Backend>& backends, uint32_t m) {
  return mg::build(backends, m, kSeed);
}

// Classic Maglev population (Eisenbud et al., NSDI 2016; equal weights): backends take turns in
// id order, each walking its permutation to the next free slot. Only the reference line of the
// disruption sweep; xlb never builds rings this way.
Result<std::vector<uint32_t>> maglev_turns(const std::vector<mg::Backend>& backends, uint32_t m) {
  std::vector<const mg::Backend*> order;
  for (const auto& b : backends) order.push_back(&b);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->id < b->id; });
  std::vector<mg::Permutation> perms;
  for (const auto* b : order) perms.push_back(mg::permutation(b->id, m, kSeed));
  std::vector<uint64_t> next(order.size(), 0);
  std::vector<uint32_t> ring(m, mg::kEmptySlot);
  if (order.empty() || order.size() > m) return Error::invalid("maglev_turns: bad backend count");
  for (uint32_t filled = 0;;) {
    for (size_t i = 0; i < order.size(); ++i) {
      uint32_t slot;
      do {
        slot = static_cast<uint32_t>((perms[i].offset + next[i]++ * perms[i].skip) % m);
      } while (ring[slot] != mg::kEmptySlot);
      ring[slot] = order[i]->index;
      if (++filled == m) return ring;
    }
  }
}

struct Disruption {
  double mean = 0;
  double worst = 0;
};

// Changes one backend of `backends` at a time (kDisruptionTrials choices), rebuilds with
// `populate` and compares with `reference` (the ring of `backends`, built the same way).
std::optional<Disruption> measure_disruption(const std::string& case_name,
                                             const std::vector<mg::Backend>& backends,
                                             uint32_t ring_size,
                                             const std::vector<uint32_t>& reference, Change change,
                                             const Populate& populate) {
  const size_t n = backends.size();
  Disruption d;
  double sum = 0;
  for (size_t t = 0; t < kDisruptionTrials; ++t) {
    std::vector<mg::Backend> changed = backends;
    const size_t chosen = t * n / kDisruptionTrials;  // removed or reweighted backend
    uint32_t moved_backend = 0;                       // its index, or the added one's
    switch (change) {
      case Change::kRemove:
        moved_backend = changed[chosen].index;
        changed.erase(changed.begin() + static_cast<long>(chosen));
        break;
      case Change::kAdd:
        moved_backend = static_cast<uint32_t>(n);
        changed.push_back(
            mg::Backend{.id = backend_id(n + 1000 + t), .weight = 1, .index = moved_backend});
        break;
      case Change::kDoubleWeight:
        moved_backend = changed[chosen].index;
        changed[chosen].weight *= 2;
        break;
    }
    auto ring = populate(changed, ring_size);
    if (!ring.ok()) {
      std::fprintf(stderr, "maglev %s: %s\n", case_name.c_str(), ring.error().to_string().c_str());
      return std::nullopt;
    }
    const auto before = std::count(reference.begin(), reference.end(), moved_backend);
    const auto after = std::count(ring->begin(), ring->end(), moved_backend);
    const long denominator = change == Change::kRemove ? before
                             : change == Change::kAdd  ? after
                                                       : after - before;
    if (denominator <= 0) {
      std::fprintf(stderr, "maglev %s: backend %u did not change share\n", case_name.c_str(),
                   moved_backend);
      return std::nullopt;
    }
    const double ratio = static_cast<double>(mg::diff(reference, *ring).changes.size()) /
                         static_cast<double>(denominator);
    d.worst = std::max(d.worst, ratio);
    sum += ratio;
  }
  d.mean = sum / kDisruptionTrials;
  return d;
}

bool emit_disruption(const Options& opts, const std::string& case_name, const Setup& s,
                     Change change) {
  auto d = measure_disruption(case_name, s.backends, s.ring_size, s.ring, change, banded_race);
  if (!d) return false;
  // The mean: which backend leaves is chance, and the expected share of moved flows is what an
  // operator plans with; the worst case is kept next to it.
  emit(opts, kSuite, case_name, "disruption_ratio", d->mean, "ratio",
       {{"target", kDisruptionTarget},
        {"worst", d->worst},
        {"trials", kDisruptionTrials},
        {"ring_size", s.ring_size},
        {"backends", s.backends.size()}});
  return true;
}

// Disruption vs N: remove one of N backends at the ring size xlb picks for N, for xlb's builder
// and, measured on the same rings' inputs, classic Maglev ("maglev_turns", the reference).
bool emit_disruption_sweep(const Options& opts) {
  for (size_t n : kSweepBackends) {
    const std::string name = "remove_one_sweep_n" + std::to_string(n);
    Setup s;
    if (!make_setup(name, n, std::nullopt, s)) return false;
    auto classic_ring = maglev_turns(s.backends, s.ring_size);
    if (!classic_ring.ok()) return false;
    auto xlb =
        measure_disruption(name, s.backends, s.ring_size, s.ring, Change::kRemove, banded_race);
    auto classic = measure_disruption(name, s.backends, s.ring_size, *classic_ring, Change::kRemove,
                                      maglev_turns);
    if (!xlb || !classic) return false;
    emit(opts, kSuite, name, "disruption_ratio", xlb->mean, "ratio",
         {{"target", kDisruptionTarget},
          {"worst", xlb->worst},
          {"maglev_turns", classic->mean},
          {"maglev_turns_worst", classic->worst},
          {"sweep", "remove_one_vs_n"},
          {"trials", kDisruptionTrials},
          {"ring_size", s.ring_size},
          {"gain_per_change", static_cast<double>(s.ring_size) / n / n},
          {"backends", n}});
  }
  return true;
}

// Median over opts.runs of the mean wall time of one call of `fn`, in milliseconds.
template <typename Fn>
double time_ms(const Options& opts, long calls_per_run, Fn&& fn) {
  std::vector<double> runs;
  for (int r = 0; r < std::max(1, opts.runs); ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < calls_per_run; ++i) fn();
    const std::chrono::duration<double, std::milli> elapsed =
        std::chrono::steady_clock::now() - start;
    runs.push_back(elapsed.count() / calls_per_run);
  }
  return median(std::move(runs));
}

// Written after every timed call so the compiler cannot drop the work.
volatile size_t g_sink;

bool emit_build_time(const Options& opts, const Setup& s) {
  bool ok = true;
  const double ms = time_ms(opts, scaled(opts, 20), [&] {
    auto ring = mg::build(s.backends, s.ring_size, kSeed);
    if (!ring.ok()) {
      ok = false;
      return;
    }
    g_sink = (*ring)[0];
  });
  if (!ok) return false;
  emit(opts, kSuite, s.name, "build_ms", ms, "ms",
       {{"target", kBuildMsTarget}, {"ring_size", s.ring_size}, {"backends", s.backends.size()}});
  return true;
}

bool emit_diff_time(const Options& opts, const Setup& s) {
  std::vector<mg::Backend> fewer = s.backends;
  fewer.erase(fewer.begin());
  auto other = mg::build(fewer, s.ring_size, kSeed);
  if (!other.ok()) return false;
  const double ms =
      time_ms(opts, scaled(opts, 200), [&] { g_sink = mg::diff(s.ring, *other).changes.size(); });
  emit(opts, kSuite, s.name, "diff_ms", ms, "ms",
       {{"ring_size", s.ring_size}, {"changes", mg::diff(s.ring, *other).changes.size()}});
  return true;
}

}  // namespace

int run_maglev_suite(const Options& opts) {
  Setup n100;
  Setup n1000;
  if (!make_setup("n100_m65537", 100, mg::kDefaultRingSize, n100)) return 1;
  if (!make_setup("n1000_auto", 1000, std::nullopt, n1000)) return 1;

  emit_balance(opts, n100);
  emit_balance(opts, n1000);
  if (!emit_disruption(opts, "remove_one_n100", n100, Change::kRemove)) return 1;
  if (!emit_disruption(opts, "add_one_n100", n100, Change::kAdd)) return 1;
  if (!emit_disruption(opts, "remove_one_n1000_auto", n1000, Change::kRemove)) return 1;
  if (!emit_disruption(opts, "add_one_n1000_auto", n1000, Change::kAdd)) return 1;
  if (!emit_disruption(opts, "weight_double_n100", n100, Change::kDoubleWeight)) return 1;
  if (!emit_disruption(opts, "weight_double_n1000_auto", n1000, Change::kDoubleWeight)) return 1;
  if (!emit_disruption_sweep(opts)) return 1;
  if (!emit_build_time(opts, n100)) return 1;
  if (!emit_build_time(opts, n1000)) return 1;
  if (!emit_diff_time(opts, n100)) return 1;
  return 0;
}

}  // namespace xlb::bench
