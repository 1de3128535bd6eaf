// SPDX-License-Identifier: Apache-2.0
// The reconciler's MapWriter over the real data plane (xlbd; benches that measure up to the
// maps).
#pragma once

#include "xlb/dataplane/balancer.h"
#include "xlb/state/reconciler.h"

namespace xlb::state {

class BalancerWriter final : public MapWriter {
 public:
  explicit BalancerWriter(dataplane::Balancer& lb) : lb_(lb) {}

  Status put_backend(uint32_t index, const xlb_backend& backend) override {
    return lb_.put_backend(index, backend);
  }
  Status clear_backend(uint32_t index) override { return lb_.clear_backend(index); }
  Status set_ring(uint32_t vip_index, std::span<const uint32_t> slots) override {
    return lb_.set_ring(vip_index, slots);
  }
  Status update_ring(uint32_t vip_index,
                     std::span<const std::pair<uint32_t, uint32_t>> slots) override {
    return lb_.update_ring(vip_index, slots);
  }
  Status clear_ring(uint32_t vip_index) override { return lb_.clear_ring(vip_index); }
  Status put_vip(const xlb_vip_key& key, const xlb_vip_meta& meta) override {
    return lb_.put_vip(key, meta);
  }
  Status delete_vip(const xlb_vip_key& key) override {
    auto erased = lb_.delete_vip(key);
    if (!erased) return erased.error();
    return {};
  }
  Status set_config(const xlb_config& config) override { return lb_.set_config(config); }

 private:
  dataplane::Balancer& lb_;
};

}  // namespace xlb::state
