// SPDX-License-Identifier: Apache-2.0
#include "fake_control_plane.h"

#include <algorithm>
#include <cerrno>

namespace xlb::test {
namespace {

std::vector<maglev::Backend> maglev_backends(const std::vector<state::BackendSpec>& specs,
                                             uint32_t first_index) {
  std::vector<maglev::Backend> out;
  for (size_t k = 0; k < specs.size(); ++k) {
    out.push_back(maglev::Backend{.id = specs[k].address.to_string(),
                                  .weight = state::effective_weight(specs[k]),
                                  .index = first_index + static_cast<uint32_t>(k)});
  }
  return out;
}

}  // namespace

Result<FakeControlPlane::Ring> FakeControlPlane::ring_of(const state::VipSpec& vip,
                                                         uint32_t first_index) {
  auto size = maglev::choose_ring_size(vip.backends.size(), vip.ring_size);
  if (!size) return size.error();
  auto backends = maglev_backends(vip.backends, first_index);
  auto slots = maglev::build(backends, size->size, /*seed=*/0);
  if (!slots) return slots.error();
  return Ring{.size = size->size, .slots = std::move(*slots)};
}

Result<state::StatusView> FakeControlPlane::status() {
  std::lock_guard lock(mu_);
  if (fail_reads_) return *fail_reads_;
  return state::StatusView{
      .version = "0.1.0-fake",
      .interface = "xlb0",
      .attach_mode = "native",
      .attach_method = "bpf_link",
      .prog_id = 42,
      .pin_dir = "/sys/fs/bpf/xlb/xlb0",
      .adopted = false,
      .uptime_seconds = 12.5,
      .config_file = "/etc/xlb/xlbd.yaml",
      .reconcile_total = commits_ + failures_,
      .reconcile_errors = failures_,
      .reconcile_seconds_sum = 0.001 * static_cast<double>(commits_ + failures_),
      .last_reconcile_seconds = 0.001,
      .last_error = "",
      .discovery = discovery_,
  };
}

Result<std::vector<state::VipView>> FakeControlPlane::vips() {
  std::lock_guard lock(mu_);
  if (fail_reads_) return *fail_reads_;
  std::vector<state::VipView> out;
  uint32_t vip_index = 0;
  uint32_t backend_index = 0;
  for (const auto& [key, spec] : state_.vips) {
    state::VipView view;
    view.spec = spec;
    view.index = vip_index++;
    auto ring = ring_of(spec, backend_index);
    if (!ring) return ring.error();
    view.ring_size = ring->size;
    for (size_t k = 0; k < spec.backends.size(); ++k) {
      state::BackendView b;
      b.spec = spec.backends[k];
      b.index = backend_index + static_cast<uint32_t>(k);
      b.effective_weight = state::effective_weight(b.spec);
      b.slots = static_cast<uint32_t>(std::count(ring->slots.begin(), ring->slots.end(), *b.index));
      b.packets = 1000 * (k + 1);
      b.bytes = b.packets * 100;
      view.packets += b.packets;
      view.bytes += b.bytes;
      view.backends.push_back(std::move(b));
    }
    view.packets += 10;
    view.bytes += 1000;
    backend_index += static_cast<uint32_t>(spec.backends.size());
    out.push_back(std::move(view));
  }
  return out;
}

Result<state::DesiredState> FakeControlPlane::desired() {
  std::lock_guard lock(mu_);
  if (fail_reads_) return *fail_reads_;
  state::DesiredState served = state_;
  for (const auto& [key, vip] : discovered_.vips) {
    auto [it, fresh] = served.vips.emplace(key, vip);
    if (fresh) continue;
    for (const auto& b : vip.backends) {  // configuration wins per address
      if (!it->second.find_backend(b.address)) it->second.backends.push_back(b);
    }
  }
  return served;
}

void FakeControlPlane::set_discovered(state::DesiredState discovered) {
  std::lock_guard lock(mu_);
  discovered_ = std::move(discovered);
}

Status FakeControlPlane::mutate(const std::function<Status(state::DesiredState&)>& change) {
  std::lock_guard lock(mu_);
  state::DesiredState next = state_;
  XLB_TRY(change(next));
  XLB_TRY(state::validate(next, kMaxVips, kMaxBackends));
  for (const auto& [key, spec] : next.vips) {  // what the reconciler would refuse to build
    auto ring = ring_of(spec, 0);
    if (!ring) return Error::invalid("VIP " + key.to_string() + ": " + ring.error().message);
  }
  if (fail_next_) {
    Error error = std::move(*fail_next_);
    fail_next_.reset();
    ++failures_;
    return error;
  }
  state_ = std::move(next);
  ++commits_;
  return {};
}

Result<maglev::Plan> FakeControlPlane::plan(const state::VipKey& vip,
                                            const std::vector<state::BackendSpec>& proposed) {
  std::lock_guard lock(mu_);
  if (fail_reads_) return *fail_reads_;
  auto it = state_.vips.find(vip);
  if (it == state_.vips.end()) {
    return Error::from_errno(ENOENT, "no VIP " + vip.to_string());
  }
  auto size = maglev::choose_ring_size(std::max(proposed.size(), it->second.backends.size()),
                                       it->second.ring_size);
  if (!size) return size.error();
  auto current = maglev_backends(it->second.backends, 0);
  auto next = maglev_backends(proposed, 0);
  return maglev::plan(current, next, size->size, /*seed=*/0);
}

Result<state::LookupView> FakeControlPlane::lookup(const state::VipKey& vip,
                                                   const Endpoint& client) {
  std::lock_guard lock(mu_);
  if (fail_reads_) return *fail_reads_;
  auto it = state_.vips.find(vip);
  if (it == state_.vips.end() && vip.port != 0) {  // the port-less fallback, as xlbd
    state::VipKey any = vip;
    any.port = 0;
    it = state_.vips.find(any);
  }
  if (it == state_.vips.end()) {
    return Error::from_errno(ENOENT, "no VIP " + vip.to_string());
  }
  uint32_t first_index = 0;  // numbered as vips() numbers them
  for (auto before = state_.vips.begin(); before != it; ++before) {
    first_index += static_cast<uint32_t>(before->second.backends.size());
  }
  auto ring = ring_of(it->second, first_index);
  if (!ring) return ring.error();
  uint64_t h = maglev::hash64(client.to_string(), 0);
  uint32_t slot = ring->slots[h % ring->size];
  if (slot == maglev::kEmptySlot) {
    return Error::from_errno(EHOSTUNREACH,
                             "VIP " + vip.to_string() + " has no backend taking new flows");
  }
  return state::LookupView{.backend = it->second.backends[slot - first_index].address,
                           .backend_index = slot,
                           .from_table = false};
}

Result<xlb_counters> FakeControlPlane::counters() {
  std::lock_guard lock(mu_);
  if (fail_reads_) return *fail_reads_;
  xlb_counters c{};
  for (uint32_t i = 0; i < XLB_CNT__MAX; ++i) c.c[i] = 10 * (i + 1);
  return c;
}

Result<state::PushView> FakeControlPlane::push_events(std::string_view body) {
  std::lock_guard lock(mu_);
  pushed_.emplace_back(body);
  return push_reply_;
}

void FakeControlPlane::set_push_reply(Result<state::PushView> reply) {
  std::lock_guard lock(mu_);
  push_reply_ = std::move(reply);
}

std::vector<std::string> FakeControlPlane::pushed_bodies() const {
  std::lock_guard lock(mu_);
  return pushed_;
}

void FakeControlPlane::set_discovery(std::optional<state::DiscoveryView> view) {
  std::lock_guard lock(mu_);
  discovery_ = std::move(view);
}

void FakeControlPlane::fail_next_mutation(Error error) {
  std::lock_guard lock(mu_);
  fail_next_ = std::move(error);
}

void FakeControlPlane::fail_reads(std::optional<Error> error) {
  std::lock_guard lock(mu_);
  fail_reads_ = std::move(error);
}

state::DesiredState FakeControlPlane::snapshot() const {
  std::lock_guard lock(mu_);
  return state_;
}

uint64_t FakeControlPlane::commits() const {
  std::lock_guard lock(mu_);
  return commits_;
}

}  // namespace xlb::test
