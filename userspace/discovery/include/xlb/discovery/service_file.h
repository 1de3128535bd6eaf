// SPDX-License-Identifier: Apache-2.0
// Service files: what a files source reads. One file per service, YAML (.yaml, .yml) or JSON
// (.json), holding one VIP entry of the main configuration's schema, or a list of them (a
// service with an IPv4 and an IPv6 VIP):
//
//   vip: 198.18.200.1:80/tcp          # required
//   name: web                         # optional settings, as in the config file
//   hash: 5tuple
//   backends:
//     - address: 198.18.3.11
//       weight: 2                     # 0..65535, default 1
//       state: active                 # active / draining / disabled
//       metadata: {zone: a}           # optional, shown, not used
//
// A file is all or nothing: any problem rejects the whole file (with its location), and the
// caller keeps the file's last good content. An empty file is a problem too (a truncated write
// must not remove a service; delete the file for that); `[]` is a file with no VIPs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/discovery/event.h"

namespace xlb::discovery {

enum class FileFormat : uint8_t { kYaml, kJson };

// The format a file name asks for, or nullopt for names a files source ignores: hidden files
// (editors' and tools' temporaries: .web.yaml.swp, .#web.yaml), backups (web.yaml~) and other
// extensions (web.yaml.tmp, written before the rename into place).
std::optional<FileFormat> service_file_format(std::string_view file_name);

// The events a file stands for: upsert_vip for each VIP (its settings, defaults included),
// upsert_backend for each backend. `origin` names the file in messages.
Result<std::vector<Event>> parse_service_file(std::string_view text, FileFormat format,
                                              const std::string& origin);

}  // namespace xlb::discovery
