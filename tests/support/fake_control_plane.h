// SPDX-License-Identifier: Apache-2.0
// An in-memory state::ControlPlane for API and metrics tests: no maps, no kernel.
//
//  * mutate() runs the change on a copy, then state::validate(), then (unless a failure was
//    injected with fail_next_mutation()) commits: the contract of the real one.
//  * vips() reports made-up but deterministic counters: backend k (0-based, in address order)
//    of a VIP has 1000 * (k + 1) packets of 100 bytes; the VIP has their sum plus 10 (drops).
//    Indices are positions: VIP i in key order, backends numbered across VIPs in order.
//    Rings are real: maglev::build over the effective weights, ring size by
//    maglev::choose_ring_size, seed 0; slots are counted from them.
//  * plan() is maglev::plan between the VIP's backends and the proposed ones.
//  * lookup() hashes the client endpoint's text onto the VIP's ring (never from the table).
// Thread-safe: one mutex around everything, as in xlbd.
#pragma once

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <optional>

#include "xlb/state/control_plane.h"

namespace xlb::test {

class FakeControlPlane : public state::ControlPlane {
 public:
  FakeControlPlane() = default;
  explicit FakeControlPlane(state::DesiredState initial) : state_(std::move(initial)) {}

  Result<state::StatusView> status() override;
  Result<std::vector<state::VipView>> vips() override;
  Result<state::DesiredState> desired() override;
  Status mutate(const std::function<Status(state::DesiredState&)>& change) override;
  Result<maglev::Plan> plan(const state::VipKey& vip,
                            const std::vector<state::BackendSpec>& proposed) override;
  Result<state::LookupView> lookup(const state::VipKey& vip, const Endpoint& client) override;
  Result<xlb_counters> counters() override;
  // Records the body and answers with what set_push_reply() gave (default: 409-style
  // operation_not_supported, as an xlbd without discovery).
  Result<state::PushView> push_events(std::string_view body) override;

  // The next mutate() fails with `error` after its change and validation passed, as a failed
  // map write would; the state stays as it was.
  void fail_next_mutation(Error error);
  // Every read fails with `error` until cleared (nullopt).
  void fail_reads(std::optional<Error> error);
  void set_push_reply(Result<state::PushView> reply);
  std::vector<std::string> pushed_bodies() const;
  // What service discovery adds to the served state from now on: desired() (the served state)
  // shows these VIPs and backends too, mutate() never sees them (as in xlbd).
  void set_discovered(state::DesiredState discovered);
  // status().discovery from now on.
  void set_discovery(std::optional<state::DiscoveryView> view);
  // The state now, without going through the interface.
  state::DesiredState snapshot() const;
  // Successful mutations so far.
  uint64_t commits() const;

  static constexpr uint32_t kMaxVips = 8;
  static constexpr uint32_t kMaxBackends = 64;

 private:
  struct Ring {
    uint32_t size = 0;
    std::vector<uint32_t> slots;
  };
  static Result<Ring> ring_of(const state::VipSpec& vip, uint32_t first_index);

  mutable std::mutex mu_;
  state::DesiredState state_;
  std::optional<Error> fail_next_;
  std::optional<Error> fail_reads_;
  uint64_t commits_ = 0;
  uint64_t failures_ = 0;
  Result<state::PushView> push_reply_ =
      Error::from_errno(ENOTSUP, "discovery is not configured (fake)");
  std::vector<std::string> pushed_;
  std::optional<state::DiscoveryView> discovery_;
  state::DesiredState discovered_;
};

}  // namespace xlb::test
