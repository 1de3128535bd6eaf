// SPDX-License-Identifier: Apache-2.0
// What each discovery source shows of itself (xlbctl status, metrics).
//
//   connected  the source is current: files watched, etcd watch established, push ready
//   stale      the source cannot be reached (etcd down, directory gone); its last good entries
//              stay in service and it keeps retrying
//   error      the source is reached but refuses us or cannot be used (authentication, TLS,
//              permissions, a directory that is not one); last good entries stay, it retries
//   starting   not yet connected for the first time
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xlb/discovery/config.h"
#include "xlb/discovery/event.h"

namespace xlb::discovery {

enum class SourceState : uint8_t { kStarting, kConnected, kStale, kError };
std::string_view to_string(SourceState s);

struct SourceStatus {
  std::string name;
  SourceType type = SourceType::kFiles;
  int priority = 0;
  SourceState state = SourceState::kStarting;
  std::string detail;               // why stale / error; the endpoint or directory when connected
  std::optional<int64_t> revision;  // etcd: the last revision applied
  // Last time the source was known to be current (connected and caught up).
  std::optional<std::chrono::system_clock::time_point> last_good;
  uint64_t events_applied = 0;   // accepted into the store
  uint64_t events_rejected = 0;  // malformed or refused, see by_reason
  std::array<uint64_t, kRejectKinds + 1> rejected_by_reason{};  // index: Reject value
  std::string last_rejection;                                   // the last rejection's message
  uint64_t stale_total = 0;         // times it left `connected` for stale or error
  uint64_t reconnects_total = 0;    // etcd: connections re-established after a loss
  uint64_t resyncs_total = 0;       // etcd: watches resumed from the last revision
  uint64_t full_resyncs_total = 0;  // etcd: full reads (start, compaction); files: rescans
  // Files: broken files with the reason each is ignored (their last good content stays).
  std::vector<std::string> problems;
};

}  // namespace xlb::discovery
