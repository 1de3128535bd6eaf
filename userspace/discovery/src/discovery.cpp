// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/discovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "hub.h"

namespace xlb::discovery {

class Discovery::Impl {
 public:
  Impl(const DiscoveryConfig& config, ApplyFn apply)
      : engine_(EngineOptions{.debounce = std::chrono::milliseconds(config.debounce_ms)},
                std::move(apply)) {}

  ~Impl() { stop(); }

  void start(const DiscoveryConfig& config) {
    config_ = config;
    worker_ = std::thread([this] { run(); });
    for (const auto& s : config.sources) start_source(s);
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    std::map<std::string, Running> sources;
    {
      std::lock_guard lock(sources_mu_);
      sources.swap(sources_);
    }
    for (auto& [name, r] : sources) {
      if (r.source) r.source->stop();
    }
    hub_.stop();
    if (worker_.joinable()) worker_.join();
  }

  Status reconfigure(const DiscoveryConfig& config) {
    if (config.debounce_ms != config_.debounce_ms) {
      return Error::invalid("discovery.debounce changes need a restart of xlbd");
    }
    std::vector<std::unique_ptr<detail::Source>> doomed;
    std::vector<std::string> dropped;
    {
      std::lock_guard lock(sources_mu_);
      for (auto it = sources_.begin(); it != sources_.end();) {
        auto same = std::find_if(config.sources.begin(), config.sources.end(),
                                 [&](const SourceConfig& s) { return s.name == it->first; });
        if (same == config.sources.end()) {
          doomed.push_back(std::move(it->second.source));
          dropped.push_back(it->first);
          it = sources_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& s : doomed) {
      if (s) s->stop();
    }
    for (const auto& name : dropped) {
      hub_.try_submit(Batch{.mode = Batch::Mode::kDropSource, .source = name});
      hub_.remove_source(name);
      spdlog::info("discovery source {} removed; its entries go", name);
    }
    for (const auto& s : config.sources) {
      std::unique_ptr<detail::Source> old;
      bool retyped = false;
      {
        std::lock_guard lock(sources_mu_);
        auto it = sources_.find(s.name);
        if (it != sources_.end()) {
          if (it->second.config == s) continue;
          // Changed: restart it; its entries stay until its first full read replaces them
          // (which only a source of the same type does: another type starts empty).
          retyped = it->second.config.type != s.type;
          old = std::move(it->second.source);
          sources_.erase(it);
        }
      }
      if (old) old->stop();
      if (retyped) hub_.try_submit(Batch{.mode = Batch::Mode::kDropSource, .source = s.name});
      start_source(s);
    }
    config_ = config;
    return ok_status();
  }

  Result<PushReply> push(std::string_view body_text) {
    std::vector<PushRejection> rejected;
    auto body = parse_push_body(body_text, rejected);
    std::string source;
    {
      std::lock_guard lock(sources_mu_);
      std::vector<std::string> push_sources;
      for (const auto& [name, r] : sources_) {
        if (r.config.type == SourceType::kPush) push_sources.push_back(name);
      }
      if (push_sources.empty()) {
        return rejection(Reject::kUnknownSource,
                         "push: no push source is configured (add one to discovery.sources with "
                         "type: push)");
      }
      if (body && body->source) {
        if (std::find(push_sources.begin(), push_sources.end(), *body->source) ==
            push_sources.end()) {
          std::string names;
          for (const auto& n : push_sources) names += (names.empty() ? "" : ", ") + n;
          return rejection(Reject::kUnknownSource,
                           "push: source: '" + *body->source +
                               "' is not a push source (configured: " + names + ")");
        }
        source = *body->source;
      } else if (push_sources.size() == 1) {
        source = push_sources.front();
      } else if (body) {
        return rejection(Reject::kUnknownSource,
                         "push: source: required, several push sources are configured");
      }
    }
    if (!body) {
      if (!source.empty()) hub_.reject(source, body.error());
      return body.error();
    }
    PushReply reply{.source = source, .replace = body->replace};
    if (!rejected.empty()) {
      for (const auto& r : rejected) {
        hub_.reject(source, rejection(r.reason, r.message));
      }
      reply.rejected = std::move(rejected);
      return reply;
    }
    Batch batch{.mode = body->replace ? Batch::Mode::kReplaceScope : Batch::Mode::kDelta,
                .source = source};
    reply.accepted = body->events.size();
    batch.events = std::move(body->events);
    if (!hub_.try_submit(std::move(batch))) {
      return Error::from_errno(EAGAIN, "push: discovery is " +
                                           std::to_string(hub_.queued_events()) +
                                           " events behind; retry later");
    }
    hub_.mark_good(source);
    return reply;
  }

  std::vector<SourceStatus> sources() const { return hub_.statuses(); }

  std::shared_ptr<const Snapshot> applied() const {
    std::lock_guard lock(view_mu_);
    return applied_;
  }

  DiscoveryStats stats() const {
    std::lock_guard lock(view_mu_);
    DiscoveryStats s = stats_;
    s.queued_events = hub_.queued_events();
    return s;
  }

  bool wait_idle(std::chrono::milliseconds timeout) const { return hub_.wait_idle(timeout); }

 private:
  struct Running {
    SourceConfig config;
    std::unique_ptr<detail::Source> source;
  };

  void start_source(const SourceConfig& s) {
    hub_.add_source(s);
    // Ranked before anything the source sends: batches are applied in queue order.
    hub_.try_submit(
        Batch{.mode = Batch::Mode::kSetPriority, .source = s.name, .priority = s.priority});
    Running r{.config = s};
    switch (s.type) {
      case SourceType::kFiles:
        r.source = detail::start_files_source(s, hub_);
        break;
      case SourceType::kEtcd:
        r.source = detail::start_etcd_source(s, hub_);
        break;
      case SourceType::kPush:
        hub_.set_state(s.name, SourceState::kConnected, "POST /v1/events");
        break;
    }
    std::lock_guard lock(sources_mu_);
    sources_[s.name] = std::move(r);
  }

  void run() {
    std::optional<Engine::Clock::time_point> deadline;
    for (;;) {
      std::deque<Batch> batches;
      if (!hub_.wait_for_work(deadline, batches)) return;
      for (auto& batch : batches) {
        for (auto& e : batch.events) {
          e.source = batch.source;
          e.scope = batch.scope;
        }
        Store::Applied result = engine_.submit(batch, Engine::Clock::now());
        for (const auto& err : result.rejected) hub_.reject(batch.source, err);
        if (result.accepted > 0) {
          hub_.update(batch.source, [&](SourceStatus& s) { s.events_applied += result.accepted; });
        }
      }
      deadline = engine_.poll(Engine::Clock::now());
      {
        std::lock_guard lock(view_mu_);
        applied_ = engine_.applied();
        stats_.engine = engine_.stats();
        stats_.generation = engine_.generation();
        stats_.store_entries = engine_.store().entries();
      }
      hub_.finished(batches.size(), engine_.pending());
    }
  }

  DiscoveryConfig config_;
  detail::Hub hub_;
  Engine engine_;  // the worker's alone
  std::thread worker_;
  bool stopped_ = false;

  mutable std::mutex sources_mu_;
  std::map<std::string, Running> sources_;

  mutable std::mutex view_mu_;
  std::shared_ptr<const Snapshot> applied_ = std::make_shared<const Snapshot>();
  DiscoveryStats stats_;
};

Result<std::unique_ptr<Discovery>> Discovery::start(const DiscoveryConfig& config, ApplyFn apply) {
  if (!apply) return Error::invalid("discovery: no apply callback");
  auto impl = std::make_unique<Impl>(config, std::move(apply));
  impl->start(config);
  return std::unique_ptr<Discovery>(new Discovery(std::move(impl)));
}

Discovery::Discovery(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Discovery::~Discovery() { stop(); }
void Discovery::stop() { impl_->stop(); }
Status Discovery::reconfigure(const DiscoveryConfig& config) { return impl_->reconfigure(config); }
Result<PushReply> Discovery::push(std::string_view json_body) { return impl_->push(json_body); }
std::vector<SourceStatus> Discovery::sources() const { return impl_->sources(); }
std::shared_ptr<const Snapshot> Discovery::applied() const { return impl_->applied(); }
DiscoveryStats Discovery::stats() const { return impl_->stats(); }
bool Discovery::wait_idle(std::chrono::milliseconds timeout) const {
  return impl_->wait_idle(timeout);
}

std::string_view to_string(SourceState s) {
  switch (s) {
    case SourceState::kStarting:
      return "starting";
    case SourceState::kConnected:
      return "connected";
    case SourceState::kStale:
      return "stale";
    case SourceState::kError:
      return "error";
  }
  return "?";
}

nlohmann::json to_json(const Snapshot& s) {
  using nlohmann::json;
  json vips = json::array();
  for (const auto& [key, v] : s.vips) {
    json backends = json::array();
    for (const auto& b : v.backends) {
      json jb = {{"address", b.spec.address.to_string()},
                 {"weight", b.spec.weight},
                 {"state", state::to_string(b.spec.state)},
                 {"owner", b.owner}};
      if (!b.metadata.empty()) {
        jb["metadata"] = json::parse(b.metadata, nullptr, /*allow_exceptions=*/false);
      }
      backends.push_back(std::move(jb));
    }
    json jv = {{"vip", key.to_string()}, {"backends", std::move(backends)}};
    if (v.spec) {
      jv["name"] = v.spec->name;
      jv["hash"] = state::to_string(v.spec->hash);
      jv["settings_owner"] = v.spec_owner;
    } else {
      jv["settings_owner"] = nullptr;
    }
    vips.push_back(std::move(jv));
  }
  return {{"vips", std::move(vips)}};
}

}  // namespace xlb::discovery
