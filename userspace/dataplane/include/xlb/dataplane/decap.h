// SPDX-License-Identifier: Apache-2.0
// Decap: the backend-side program (xlb_decap) and its config/counters.
#pragma once

#include <memory>

#include "xlb/abi.h"
#include "xlb/core/result.h"
#include "xlb/dataplane/map.h"

struct xlb_decap;
struct xlb_helpers;

namespace xlb::dataplane {

class Decap {
 public:
  static Result<std::unique_ptr<Decap>> load();
  ~Decap();
  Decap(const Decap&) = delete;
  Decap& operator=(const Decap&) = delete;

  int prog_fd() const;
  Status set_config(const xlb_decap_config& cfg);
  Result<xlb_decap_counters> counters() const;

 private:
  Decap() = default;
  xlb_decap* skel_ = nullptr;
  Map<uint32_t, xlb_decap_config> config_;
  PerCpuArray<xlb_decap_counters> counters_;
};

// The two trivial programs: xlb_floor_tx (benchmark floor) and xlb_pass (veth peers).
class HelperPrograms {
 public:
  static Result<std::unique_ptr<HelperPrograms>> load();
  ~HelperPrograms();
  HelperPrograms(const HelperPrograms&) = delete;
  HelperPrograms& operator=(const HelperPrograms&) = delete;

  int floor_tx_fd() const;
  int pass_fd() const;

 private:
  HelperPrograms() = default;
  ::xlb_helpers* skel_ = nullptr;
};

}  // namespace xlb::dataplane
