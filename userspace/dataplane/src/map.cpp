// SPDX-License-Identifier: Apache-2.0
#include "xlb/dataplane/map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

namespace xlb::dataplane {

Status MapRef::update_raw(const void* key, const void* value, uint64_t flags) const {
  if (bpf_map_update_elem(fd_, key, value, flags) != 0) {
    return Error::from_errno(errno, "updating BPF map " + name_);
  }
  return {};
}

Result<bool> MapRef::lookup_raw(const void* key, void* value) const {
  if (bpf_map_lookup_elem(fd_, key, value) == 0) return true;
  if (errno == ENOENT) return false;
  return Error::from_errno(errno, "reading BPF map " + name_);
}

Result<bool> MapRef::erase_raw(const void* key) const {
  if (bpf_map_delete_elem(fd_, key) == 0) return true;
  if (errno == ENOENT) return false;
  return Error::from_errno(errno, "deleting from BPF map " + name_);
}

Result<std::vector<std::vector<uint8_t>>> MapRef::keys_raw(size_t key_size) const {
  std::vector<std::vector<uint8_t>> keys;
  std::vector<uint8_t> key(key_size), next(key_size);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd_, prev, next.data()) == 0) {
    keys.push_back(next);
    key = next;
    prev = key.data();
  }
  if (errno != ENOENT) return Error::from_errno(errno, "iterating BPF map " + name_);
  return keys;
}

int possible_cpus() {
  static const int n = [] {
    int cpus = libbpf_num_possible_cpus();
    return cpus > 0 ? cpus : 1;
  }();
  return n;
}

}  // namespace xlb::dataplane
