// SPDX-License-Identifier: Apache-2.0
// The `discovery:` section of the xlbd configuration file (docs/discovery.md):
//
//   discovery:
//     debounce: 50ms            # at most one update per window (0ms..10s)
//     sources:
//       - name: services        # files: one YAML/JSON file per service, watched with inotify
//         type: files
//         dir: /etc/xlb/services.d
//       - name: registry        # etcd v3 through its JSON gateway
//         type: etcd
//         endpoints: ["http://198.18.0.10:2379", "http://198.18.0.11:2379"]
//         prefix: /xlb/cluster-a
//         username: xlb                       # optional, with password_file
//         password_file: /etc/xlb/etcd.password
//         ca_file: /etc/xlb/etcd-ca.pem       # https endpoints: optional CA, client cert + key
//       - name: webhooks        # POST /v1/events
//         type: push
//         priority: 300         # precedence between sources; default files 200, push 300, etcd 100
//
// Parsing is pure (no file is opened, nothing connects): `xlbd --check-config` can run it.
// Errors are located like the rest of the file: FILE:LINE:COL: discovery.sources[1].prefix: ...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/core/result.h"

namespace YAML {
class Node;
}

namespace xlb::discovery {

enum class SourceType : uint8_t { kFiles, kEtcd, kPush };
std::string_view to_string(SourceType t);  // files, etcd, push

struct FilesSourceConfig {
  std::string dir;

  friend bool operator==(const FilesSourceConfig&, const FilesSourceConfig&) = default;
};

struct EtcdSourceConfig {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379" or https://; tried in turn
  std::string prefix;                  // "/xlb/cluster-a": keys live under PREFIX/vips/
  std::optional<std::string> username;
  std::optional<std::string> password_file;
  std::optional<std::string> ca_file;  // https only
  std::optional<std::string> cert_file;
  std::optional<std::string> key_file;
  uint32_t dial_timeout_ms = 2000;
  uint32_t request_timeout_ms = 5000;
  uint32_t backoff_initial_ms = 100;  // reconnect back-off doubles up to backoff_max_ms
  uint32_t backoff_max_ms = 5000;

  friend bool operator==(const EtcdSourceConfig&, const EtcdSourceConfig&) = default;
};

struct SourceConfig {
  std::string name;
  SourceType type = SourceType::kFiles;
  int priority = 0;
  FilesSourceConfig files;  // type files
  EtcdSourceConfig etcd;    // type etcd

  friend bool operator==(const SourceConfig&, const SourceConfig&) = default;
};

int default_priority(SourceType t);  // files 200, push 300, etcd 100

struct DiscoveryConfig {
  uint32_t debounce_ms = 50;
  std::vector<SourceConfig> sources;

  friend bool operator==(const DiscoveryConfig&, const DiscoveryConfig&) = default;
};

// Parses the value of the `discovery:` key; `source_name` (the config file's path) starts every
// error message.
Result<DiscoveryConfig> parse_discovery_config(const YAML::Node& node,
                                               const std::string& source_name);

// Convenience for tests and tools: YAML text holding the section's value.
Result<DiscoveryConfig> parse_discovery_config_text(std::string_view yaml_text,
                                                    const std::string& source_name);

namespace discovery_bounds {
inline constexpr uint32_t kMaxDebounceMs = 10000;  // longer is a stale data plane, not coalescing
inline constexpr int kMaxPriority = 1000;
inline constexpr size_t kMaxSources = 32;
}  // namespace discovery_bounds

}  // namespace xlb::discovery
