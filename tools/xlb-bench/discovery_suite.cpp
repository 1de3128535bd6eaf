// SPDX-License-Identifier: Apache-2.0
// xlb-bench suite "discovery": how fast a registry change reaches the daemon, and how much churn
// the module sustains. A real etcd is started on 127.0.0.1 (free ports, data under a mkdtemp
// directory in /dev/shm so etcd's fsync does not dominate) and killed by PID at the end.
//
//   etcd_event_to_map_ms   etcd put sent -> watch stream -> decode -> store -> coalescer ->
//                          the callback xlbd runs: merge with the (empty) configured state,
//                          validate, reconcile into a real balancer's BPF maps (ring slots,
//                          backend entries) -> returned. As root; without root the maps are
//                          left out and the record says so ("measures").
//     The probe VIP has two backends: a fixed one (weight 30000) and the probe, whose weight
//     each put raises by one, so every put moves ring slots that must be written.
//     case etcd_put_isolated   puts 100 ms apart: each one meets an idle coalescer (leading
//                              edge). Target <= 50 ms.
//     case etcd_put_in_burst   puts 10 ms apart: most land inside a window and wait for its end;
//                              this is the debounce (50 ms) showing, by design.
//   events_per_s           sustained rate for a 1,000-backend churn (10 VIPs x 100 backends, every
//                          backend rewritten with a new weight each round, 100 puts per etcd
//                          transaction): events written / time from the first write until the
//                          callback holds the last round's weights.
//     case engine_only         the same churn fed straight into the Engine: the module's ceiling
//                              without etcd and the network.
#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "bench.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/discovery/discovery.h"
#include "xlb/discovery/merge.h"
#include "xlb/state/balancer_writer.h"
#include "xlb/discovery/engine.h"
#include "xlb/discovery/etcd_gateway.h"
#include "xlb/discovery/etcd_keys.h"
#include "xlb/discovery/testing/etcd_server.h"

namespace xlb::bench {
namespace {

namespace ds = xlb::discovery;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr char kSuite[] = "discovery";
constexpr char kPrefix[] = "/xlb/bench";
constexpr double kLatencyTarget = 50.0;
constexpr int kVips = 10;
constexpr int kBackendsPerVip = 100;
constexpr size_t kTxnOps = 100;  // below etcd's default --max-txn-ops (128)
constexpr char kMeasuresMaps[] =
    "etcd put sent -> watch -> decode -> store -> coalescer -> xlbd's update path: merge, "
    "validate, reconcile into a real balancer's BPF maps (ring slots written)";
constexpr char kMeasuresCallback[] =
    "etcd put sent -> watch -> decode -> store -> coalescer -> callback (not root: no BPF maps, "
    "merge + validate only)";

double ms_since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

state::VipKey vip_n(int i) {
  return *state::VipKey::parse("198.18.200." + std::to_string(i + 1) + ":80/tcp");
}
IpAddress backend_n(int i) {
  return IpAddress::v4_from_be(htonl(0xc6120300u + static_cast<uint32_t>(i) + 1));  // 198.18.3.x+
}

// What xlbd does with an update, into real maps: merge -> validate -> reconcile.
class MapSink {
 public:
  static std::unique_ptr<MapSink> open() {
    auto lb = dataplane::Balancer::load({.max_vips = kMaxVips, .max_backends = kMaxBackends,
                                         .flows_per_cpu = 1024});
    if (!lb) {
      std::fprintf(stderr, "discovery: no BPF maps (%s): measuring to the callback only\n",
                   lb.error().to_string().c_str());
      return nullptr;
    }
    return std::unique_ptr<MapSink>(new MapSink(std::move(*lb)));
  }

  Status apply(const ds::Snapshot& discovered) {
    state::DesiredState none;
    auto merged = ds::merge(none, discovered, limits_);
    XLB_TRY(state::validate(merged.state, limits_.max_vips, limits_.max_backends));
    auto report = reconciler_.apply(merged.state, config_);
    if (!report) return report.error();
    slots_written_ += report->slots_changed;
    return ok_status();
  }
  uint64_t slots_written() const { return slots_written_; }

 private:
  static constexpr uint32_t kMaxVips = 16;
  static constexpr uint32_t kMaxBackends = 2048;

  explicit MapSink(std::unique_ptr<dataplane::Balancer> lb)
      : lb_(std::move(lb)),
        writer_(*lb_),
        reconciler_(writer_, {.max_vips = kMaxVips, .max_backends = kMaxBackends}) {
    limits_.max_vips = kMaxVips;
    limits_.max_backends = kMaxBackends;
    state::GlobalConfig g;
    g.encap_source_v4 = *IpPrefix::parse("198.19.0.0/16");
    config_ = state::to_abi(g, {0x02, 0, 0, 0, 0, 0x01});
  }

  std::unique_ptr<dataplane::Balancer> lb_;
  state::BalancerWriter writer_;
  state::Reconciler reconciler_;
  state::Limits limits_;
  xlb_config config_{};
  uint64_t slots_written_ = 0;
};

// The callback: applies the update (to the maps when there is a sink), then remembers when
// each (VIP, backend, weight) was first seen.
class Watcher {
 public:
  explicit Watcher(MapSink* sink) : sink_(sink) {}

  ds::ApplyFn fn() {
    return [this](const ds::Update& u) -> Status {
      if (sink_ != nullptr) {
        if (auto st = sink_->apply(u.discovered); !st) {
          std::fprintf(stderr, "discovery: reconcile: %s\n", st.error().to_string().c_str());
          return st;
        }
      }
      const auto now = Clock::now();
      std::lock_guard lock(mu_);
      updates_++;
      for (const auto& key : u.changed) {
        auto it = u.discovered.vips.find(key);
        if (it == u.discovered.vips.end()) continue;
        for (const auto& b : it->second.backends) {
          if (key == probe_vip_) {  // the probe VIP is not part of the churn set
            if (b.spec.address == probe_) trace_.emplace_back(now, b.spec.weight);
          } else {
            weights_[{key, b.spec.address}] = b.spec.weight;
          }
        }
      }
      last_update_ = now;
      cv_.notify_all();
      return ok_status();
    };
  }
  // The probe backend: every update that changes it is traced (time, weight).
  void set_probe(const state::VipKey& vip, const IpAddress& a) {
    std::lock_guard lock(mu_);
    probe_vip_ = vip;
    probe_ = a;
  }
  // Waits until the probe has `weight`; returns the trace.
  std::optional<std::vector<std::pair<Clock::time_point, uint32_t>>> wait_probe(
      uint32_t weight, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    bool ok = cv_.wait_for(lock, timeout,
                           [&] { return !trace_.empty() && trace_.back().second == weight; });
    if (!ok) return std::nullopt;
    return trace_;
  }
  bool wait_all(uint32_t weight, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      if (weights_.size() < static_cast<size_t>(kVips * kBackendsPerVip)) return false;
      for (const auto& [k, w] : weights_) {
        if (w != weight) return false;
      }
      return true;
    });
  }
  uint64_t updates() {
    std::lock_guard lock(mu_);
    return updates_;
  }
  bool to_maps() const { return sink_ != nullptr; }
  Clock::time_point last_update() {
    std::lock_guard lock(mu_);
    return last_update_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<state::VipKey, IpAddress>, uint32_t> weights_;
  state::VipKey probe_vip_;
  IpAddress probe_;
  std::vector<std::pair<Clock::time_point, uint32_t>> trace_;
  uint64_t updates_ = 0;
  Clock::time_point last_update_;
  MapSink* sink_;
};

std::string weight_value(uint32_t w) { return "{\"weight\": " + std::to_string(w) + "}"; }

// Writes every backend of the churn set with `weight`, kTxnOps puts per transaction.
bool write_round(ds::EtcdGateway& gw, uint32_t weight) {
  std::vector<std::pair<std::string, std::string>> ops;
  for (int v = 0; v < kVips; v++) {
    for (int b = 0; b < kBackendsPerVip; b++) {
      ops.emplace_back(ds::etcd_backend_key(kPrefix, vip_n(v), backend_n(v * kBackendsPerVip + b)),
                       weight_value(weight));
      if (ops.size() == kTxnOps) {
        if (auto r = gw.put_all(ops); !r) {
          std::fprintf(stderr, "discovery: etcd txn: %s\n", r.error().to_string().c_str());
          return false;
        }
        ops.clear();
      }
    }
  }
  return true;
}

// Puts the probe key every `spacing`, on a fixed schedule whatever the callback does. A put's
// latency: until the first update showing its weight or a newer one (the coalescer may skip a
// value that a newer one replaced within the window: the state is then already newer).
int latency_case(const Options& opts, ds::EtcdGateway& gw, Watcher& w, const std::string& name,
                 std::chrono::milliseconds spacing, int samples) {
  const auto probe_vip = *state::VipKey::parse("198.18.201.1:80/tcp");
  const IpAddress probe = *IpAddress::parse("198.18.4.1");
  const std::string key = ds::etcd_backend_key(kPrefix, probe_vip, probe);
  // The fixed second backend: the probe's weight changes then move ring slots.
  if (auto r = gw.put(ds::etcd_backend_key(kPrefix, probe_vip, *IpAddress::parse("198.18.4.2")),
                      weight_value(30000));
      !r) {
    std::fprintf(stderr, "discovery: etcd put: %s\n", r.error().to_string().c_str());
    return 1;
  }
  w.set_probe(probe_vip, probe);
  std::this_thread::sleep_for(100ms);  // start from an idle coalescer
  static uint32_t weight = 0;
  std::vector<double> run_p50, all, put_rtt;
  for (int run = 0; run < opts.runs; run++) {
    if (weight + static_cast<uint32_t>(samples) + 1 > 65535) weight = 0;  // stay increasing
    std::vector<std::pair<Clock::time_point, uint32_t>> sent;
    auto next = Clock::now();
    for (int i = 0; i < samples; i++) {
      std::this_thread::sleep_until(next);
      next += spacing;
      const auto t0 = Clock::now();
      if (auto r = gw.put(key, weight_value(++weight)); !r) {
        std::fprintf(stderr, "discovery: etcd put: %s\n", r.error().to_string().c_str());
        return 1;
      }
      put_rtt.push_back(ms_since(t0, Clock::now()));
      sent.emplace_back(t0, weight);
    }
    auto trace = w.wait_probe(weight, 10s);
    if (!trace) {
      std::fprintf(stderr, "discovery: the update for weight %u never came\n", weight);
      return 1;
    }
    std::vector<double> lat;
    for (const auto& [t0, wt] : sent) {
      for (const auto& [t, seen] : *trace) {
        if (seen >= wt && t >= t0) {
          lat.push_back(ms_since(t0, t));
          break;
        }
      }
    }
    run_p50.push_back(median(lat));
    all.insert(all.end(), lat.begin(), lat.end());
    std::this_thread::sleep_for(100ms);  // let the coalescer go idle between runs
  }
  emit(opts, kSuite, name, "etcd_event_to_map_ms", median(run_p50), "ms",
       {{"target", kLatencyTarget},
        {"p99", percentile(all, 0.99)},
        {"max", percentile(all, 1.0)},
        {"samples", all.size()},
        {"spacing_ms", spacing.count()},
        {"debounce_ms", 50},
        {"put_rtt_ms_p50", percentile(put_rtt, 0.5)},
        {"measures", w.to_maps() ? kMeasuresMaps : kMeasuresCallback}});
  return 0;
}

int churn_case(const Options& opts, ds::EtcdGateway& gw, Watcher& w) {
  const double seconds = std::max(0.5, 3.0 * opts.scale);
  const size_t events_per_round = static_cast<size_t>(kVips * kBackendsPerVip);
  std::vector<double> rates, fed_rates, converge;
  uint64_t updates_total = 0;
  static uint32_t weight = 1;
  for (int run = 0; run < opts.runs; run++) {
    const uint64_t updates_before = w.updates();
    const auto t0 = Clock::now();
    size_t written = 0;
    while (ms_since(t0, Clock::now()) < seconds * 1000) {
      weight = weight % 65000 + 2;
      if (!write_round(gw, weight)) return 1;
      written += events_per_round;
    }
    const auto t_written = Clock::now();
    if (!w.wait_all(weight, 30s)) {
      std::fprintf(stderr, "discovery: churn did not converge\n");
      return 1;
    }
    const auto t_done = w.last_update();
    rates.push_back(static_cast<double>(written) / (ms_since(t0, t_done) / 1000));
    fed_rates.push_back(static_cast<double>(written) / (ms_since(t0, t_written) / 1000));
    converge.push_back(std::max(0.0, ms_since(t_written, t_done)));
    updates_total += w.updates() - updates_before;
  }
  emit(opts, kSuite, "churn_1000_backends", "events_per_s", median(rates), "events/s",
       {{"fed_events_per_s", median(fed_rates)},
        {"converge_after_last_write_ms", median(converge)},
        {"updates_per_run", static_cast<double>(updates_total) / opts.runs},
        {"seconds_per_run", seconds},
        {"txn_ops", kTxnOps},
        {"to_maps", w.to_maps()},
        {"note",
         "events written / (first write -> the last round reconciled into the maps); etcd on "
         "tmpfs, one writer"}});
  return 0;
}

int engine_case(const Options& opts) {
  const long rounds = scaled(opts, 200, 5);
  std::vector<double> rates;
  for (int run = 0; run < opts.runs; run++) {
    uint64_t callbacks = 0;
    ds::Engine engine(ds::EngineOptions{.debounce = 50ms}, [&](const ds::Update&) {
      callbacks++;
      return ok_status();
    });
    const auto t0 = Clock::now();
    size_t events = 0;
    for (long r = 0; r < rounds; r++) {
      for (int v = 0; v < kVips; v++) {
        ds::Batch batch{.mode = ds::Batch::Mode::kDelta, .source = "etcd"};
        for (int b = 0; b < kBackendsPerVip; b++) {
          batch.events.push_back(ds::Event{
              .kind = ds::EventKind::kUpsertBackend,
              .vip = vip_n(v),
              .backend = state::BackendSpec{.address = backend_n(v * kBackendsPerVip + b),
                                            .weight = static_cast<uint32_t>(r % 60000 + 1)}});
        }
        events += batch.events.size();
        engine.submit(batch, Clock::now());
        (void)engine.poll(Clock::now());
      }
    }
    (void)engine.poll(Clock::now() + 1s);
    rates.push_back(static_cast<double>(events) / (ms_since(t0, Clock::now()) / 1000));
  }
  emit(opts, kSuite, "engine_only", "events_per_s", median(rates), "events/s",
       {{"note",
         "1,000-backend churn straight into the Engine (store + coalescer + snapshot), "
         "no etcd, no network"}});
  return 0;
}

}  // namespace

int run_discovery_suite(const Options& opts) {
  int rc = engine_case(opts);
  if (!ds::testing::EtcdServer::available()) {
    std::fprintf(stderr, "discovery: etcd/etcdctl not installed; etcd cases skipped\n");
    return rc;
  }
  auto etcd = ds::testing::EtcdServer::start({.temp_parent = "/dev/shm"});
  if (!etcd) {
    std::fprintf(stderr, "discovery: %s\n", etcd.error().to_string().c_str());
    return 1;
  }
  ds::EtcdGateway gw(ds::EtcdOptions{.endpoint = (*etcd)->endpoint()});
  // The churn set exists before discovery starts: its first full read is the baseline.
  if (!write_round(gw, 1)) return 1;
  auto sink = MapSink::open();
  Watcher watcher(sink.get());
  ds::SourceConfig source{.name = "registry", .type = ds::SourceType::kEtcd, .priority = 100};
  source.etcd.endpoints = {(*etcd)->endpoint()};
  source.etcd.prefix = kPrefix;
  auto d = ds::Discovery::start(ds::DiscoveryConfig{.debounce_ms = 50, .sources = {source}},
                                watcher.fn());
  if (!d) {
    std::fprintf(stderr, "discovery: %s\n", d.error().to_string().c_str());
    return 1;
  }
  if (!watcher.wait_all(1, 30s)) {
    std::fprintf(stderr, "discovery: initial read never arrived\n");
    return 1;
  }
  const int samples = static_cast<int>(scaled(opts, 100, 10));
  rc |= latency_case(opts, gw, watcher, "etcd_put_isolated", 100ms, samples);
  rc |= latency_case(opts, gw, watcher, "etcd_put_in_burst", 10ms, samples);
  rc |= churn_case(opts, gw, watcher);
  (*d)->stop();
  return rc;
}

}  // namespace xlb::bench
