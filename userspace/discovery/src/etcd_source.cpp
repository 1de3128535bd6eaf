// SPDX-License-Identifier: Apache-2.0
// etcd source: a key prefix of an etcd v3 cluster, read whole once, then followed by a watch.
// Only PREFIX/vips/ is read: the rest of the prefix is free for other uses.
//
//   full read   range PREFIX/vips/ page by page at one pinned revision R; the keys become one
//               kReplaceScope batch (entries no key names any more are removed); watch from R+1
//   watch       each response's events are one kDelta batch; the revision advances with them
//   loss        the stream ends (etcd killed, connection reset, idle timeout): reconnect at once,
//               then with back-off (doubling, capped) across the endpoints; the source is
//               stale from the first failed attempt and its entries stay. Once back, the watch
//               resumes from the last revision + 1, so nothing in between is missed
//   compacted   when that revision was compacted meanwhile, etcd cancels the watch: full read
//
// Last good per key: a put with a malformed value is rejected and counted, and the key keeps
// its previous good value (also across a full read), so a bad write never removes a backend or
// a VIP. A delete removes the key's entry.
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "hub.h"
#include "sigpipe_guard.h"
#include "xlb/discovery/etcd_gateway.h"
#include "xlb/discovery/etcd_keys.h"

namespace xlb::discovery::detail {
namespace {

constexpr int64_t kPageSize = 1000;

class EtcdSource final : public Source {
 public:
  EtcdSource(const SourceConfig& config, Hub& hub)
      : config_(config),
        hub_(hub),
        vips_prefix_(etcd_vip_prefix(config.etcd.prefix)),
        watch_from_(vips_prefix_),
        watch_end_(EtcdGateway::prefix_end(vips_prefix_)) {
    thread_ = std::thread([this] { run(); });
  }
  ~EtcdSource() override { stop(); }

  void stop() override {
    if (stopped_.exchange(true)) return;
    cancel_ = true;
    hub_.wake_submitters();
    {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    }
    // cancel() shuts a blocked request down; repeat it, since a request may have been starting
    // (no socket yet) the first time.
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (gateway_) gateway_->cancel();
        if (exited_) break;
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return exited_; });
      if (exited_) break;
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run();
  // One connection's life: authenticate, read (full or not), watch until it ends. Returns why.
  Status session(EtcdGateway& gw, bool& established);
  Status full_read(EtcdGateway& gw);
  Status watch(EtcdGateway& gw, bool& established);
  // The events a key's put or delete stands for, given every key of the VIP we know.
  void on_put(const KeyValue& kv, std::vector<Event>& out);
  void on_delete(const std::string& key, std::vector<Event>& out);
  bool submit(Batch batch) { return hub_.submit(std::move(batch), cancel_); }
  bool sleep_ms(int64_t ms);
  Result<std::string> read_password() const;

  const std::string& name() const { return config_.name; }

  SourceConfig config_;
  Hub& hub_;
  const std::string vips_prefix_;
  const std::string watch_from_, watch_end_;

  std::atomic<bool> stopped_{false};
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool exited_ = false;
  std::shared_ptr<EtcdGateway> gateway_;

  // Keys of the layout and the event each last stood for (upserts only: the last good value).
  std::map<std::string, Event> keys_;
  int64_t revision_ = 0;  // every event up to here has been submitted; 0: never read
  bool need_full_ = true;
  bool ever_established_ = false;
  std::thread thread_;
};

bool EtcdSource::sleep_ms(int64_t ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return cancel_.load(); });
  return cancel_;
}

Result<std::string> EtcdSource::read_password() const {
  std::ifstream in(*config_.etcd.password_file);
  if (!in) {
    return Error::from_errno(errno,
                             "reading the etcd password file " + *config_.etcd.password_file);
  }
  std::string password;
  std::getline(in, password);
  while (!password.empty() && (password.back() == '\r' || password.back() == ' ')) {
    password.pop_back();
  }
  return password;
}

void EtcdSource::on_put(const KeyValue& kv, std::vector<Event>& out) {
  auto event = parse_etcd_put(config_.etcd.prefix, kv.key, kv.value);
  if (!event) {
    // Last good stays: nothing is emitted for this key.
    hub_.reject(name(), event.error());
    return;
  }
  keys_[kv.key] = *event;
  out.push_back(std::move(*event));
}

void EtcdSource::on_delete(const std::string& key, std::vector<Event>& out) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;  // a key we never took (malformed or foreign): nothing to undo
  Event gone = std::move(it->second);
  keys_.erase(it);
  if (gone.kind == EventKind::kUpsertBackend) {
    out.push_back(
        Event{.kind = EventKind::kRemoveBackend, .vip = gone.vip, .backend = gone.backend});
    return;
  }
  // The settings key went: remove_vip takes the source's whole VIP, so the VIP's backend keys
  // that remain are stated again in the same batch (applied as one: no gap is ever visible).
  out.push_back(Event{.kind = EventKind::kRemoveVip, .vip = gone.vip});
  const std::string vip_keys = vips_prefix_ + gone.vip.to_string() + "/backends/";
  for (auto k = keys_.lower_bound(vip_keys); k != keys_.end() && k->first.starts_with(vip_keys);
       ++k) {
    out.push_back(k->second);
  }
}

Status EtcdSource::full_read(EtcdGateway& gw) {
  std::map<std::string, Event> previous = std::move(keys_);
  keys_.clear();
  std::vector<Event> events;
  int64_t pinned = 0;
  std::string from = watch_from_;
  for (;;) {
    auto page = gw.range(from, watch_end_, pinned, kPageSize);
    if (!page) {
      keys_ = std::move(previous);  // nothing happened
      return page.error();
    }
    if (pinned == 0) pinned = page->revision;  // every page reads the same revision
    for (const auto& kv : page->kvs) {
      auto event = parse_etcd_put(config_.etcd.prefix, kv.key, kv.value);
      if (event) {
        keys_[kv.key] = std::move(*event);
        continue;
      }
      hub_.reject(name(), event.error());
      // A malformed value keeps the key's last good one.
      if (auto old = previous.find(kv.key); old != previous.end()) {
        keys_[kv.key] = old->second;
      }
    }
    if (!page->more || page->kvs.empty()) break;
    from = page->kvs.back().key + std::string(1, '\0');
  }
  events.reserve(keys_.size());
  for (const auto& [key, e] : keys_) events.push_back(e);
  revision_ = pinned;
  need_full_ = false;
  // Status first: whoever sees the batch's effect sees the status that goes with it.
  hub_.update(name(), [&](SourceStatus& s) {
    s.full_resyncs_total++;
    s.revision = revision_;
  });
  Batch batch{.mode = Batch::Mode::kReplaceScope, .source = name()};
  batch.events = std::move(events);
  if (!submit(std::move(batch))) return Error::invalid("stopping");
  return ok_status();
}

Status EtcdSource::watch(EtcdGateway& gw, bool& established) {
  bool compacted = false;
  Status ended = gw.watch(watch_from_, watch_end_, revision_ + 1, [&](const WatchResponse& wr) {
    if (wr.canceled) {
      if (wr.compact_revision > 0) compacted = true;
      return false;
    }
    if (wr.created) {
      established = true;
      if (ever_established_) hub_.update(name(), [](SourceStatus& s) { s.reconnects_total++; });
      ever_established_ = true;
      hub_.set_state(name(), SourceState::kConnected, gw.endpoint() + " " + config_.etcd.prefix);
      return true;
    }
    if (wr.events.empty()) {
      // A progress notification: everything up to wr.revision has been delivered.
      if (wr.revision > revision_) revision_ = wr.revision;
      hub_.mark_good(name());
      return true;
    }
    std::vector<Event> events;
    int64_t last = revision_;
    for (const auto& we : wr.events) {
      last = std::max(last, we.kv.mod_revision);
      if (we.is_delete) {
        on_delete(we.kv.key, events);
      } else {
        on_put(we.kv, events);
      }
    }
    revision_ = last;
    hub_.update(name(), [&](SourceStatus& s) {
      s.revision = revision_;
      s.last_good = std::chrono::system_clock::now();
    });
    if (!events.empty()) {
      Batch batch{.mode = Batch::Mode::kDelta, .source = name()};
      batch.events = std::move(events);
      if (!submit(std::move(batch))) return false;
    }
    return true;
  });
  if (compacted) {
    need_full_ = true;
    return Error{make_error_code(EtcdErrc::kCompacted),
                 "revision " + std::to_string(revision_ + 1) + " was compacted"};
  }
  return ended;
}

Status EtcdSource::session(EtcdGateway& gw, bool& established) {
  if (config_.etcd.username) {
    auto password = read_password();
    if (!password) return Error{make_error_code(EtcdErrc::kAuth), password.error().to_string()};
    XLB_TRY(gw.authenticate(*config_.etcd.username, *password));
  }
  if (need_full_) {
    XLB_TRY(full_read(gw));
  } else {
    hub_.update(name(), [](SourceStatus& s) { s.resyncs_total++; });
  }
  return watch(gw, established);
}

void EtcdSource::run() {
  // Connections are also closed (and TLS shut down) outside the gateway's calls.
  SigpipeGuard guard;
  const auto& e = config_.etcd;
  std::mt19937 rng(std::random_device{}());
  int64_t backoff = e.backoff_initial_ms;
  size_t endpoint = 0;
  while (!cancel_) {
    auto gw = std::make_shared<EtcdGateway>(
        EtcdOptions{.endpoint = e.endpoints[endpoint],
                    .ca_file = e.ca_file,
                    .cert_file = e.cert_file,
                    .key_file = e.key_file,
                    .dial_timeout = std::chrono::milliseconds(e.dial_timeout_ms),
                    .request_timeout = std::chrono::milliseconds(e.request_timeout_ms)});
    {
      std::lock_guard lock(mu_);
      if (cancel_) break;
      gateway_ = gw;
    }
    bool established = false;
    Status st = session(*gw, established);
    {
      std::lock_guard lock(mu_);
      gateway_.reset();
    }
    if (cancel_) break;
    const auto code = etcd_errc(st.error());
    if (code == EtcdErrc::kCompacted) {
      spdlog::info("discovery source {}: {}; reading the prefix again", name(), st.error().message);
      continue;  // need_full_ is set: read at once
    }
    if (code == EtcdErrc::kIdle) continue;  // a quiet prefix: resume the watch, nothing failed
    if (established) {
      // A working stream ended (etcd restarted, connection reset): try again at once; the state
      // changes only if that fails.
      backoff = e.backoff_initial_ms;
      continue;
    }
    const bool unreachable = code == EtcdErrc::kUnreachable || !code;
    hub_.set_state(name(), unreachable ? SourceState::kStale : SourceState::kError,
                   st.error().message);
    endpoint = (endpoint + 1) % e.endpoints.size();
    // Jitter spreads the reconnects of many xlb hosts after an etcd outage.
    std::uniform_int_distribution<int64_t> jitter(0, backoff / 5);
    if (sleep_ms(backoff + jitter(rng))) break;
    backoff = std::min<int64_t>(backoff * 2, e.backoff_max_ms);
  }
  std::lock_guard lock(mu_);
  exited_ = true;
  cv_.notify_all();
}

}  // namespace

std::unique_ptr<Source> start_etcd_source(const SourceConfig& config, Hub& hub) {
  return std::make_unique<EtcdSource>(config, hub);
}

}  // namespace xlb::discovery::detail
