// SPDX-License-Identifier: Apache-2.0
// merge(): the state xlbd serves, from what the configuration says and what discovery found.
// A pure function, so the daemon keeps one path for every change: it holds the configured
// state (config file + API edits) and the last discovery Snapshot, and any change to either
// goes through   merged = merge(configured, snapshot, limits) -> validate -> reconcile.
//
// Rules (docs/discovery.md, "Precedence"):
//  - The configuration owns its VIPs: their settings are the configured ones, their configured
//    backends stay as configured. Discovery may add backends to a configured VIP; for an
//    address both name, the configured entry wins.
//  - Every other discovered VIP is served with the winning discovered settings (defaults when
//    no source set any) and the winning entry per backend (Store's precedence).
//  - The result always passes state::validate() against `limits` when `configured` does: a
//    discovered name already taken is dropped, discovered VIPs and backends beyond the limits
//    are left out in VIP-key then address order. Each such decision is noted.
//  - Health is applied after this, by the health module: it may take a backend out of the ring
//    (down, slow start), but never puts in one that discovery or configuration marked draining
//    or disabled.
#pragma once

#include <string>
#include <vector>

#include "xlb/discovery/store.h"
#include "xlb/state/types.h"

namespace xlb::discovery {

struct MergeResult {
  state::DesiredState state;
  std::vector<std::string> notes;  // what was left out or overridden, and why
};

MergeResult merge(const state::DesiredState& configured, const Snapshot& discovered,
                  const state::Limits& limits);

}  // namespace xlb::discovery
