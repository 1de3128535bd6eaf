// SPDX-License-Identifier: Apache-2.0
// Typed access to BPF maps by fd. Keys and values are ABI structs; every call returns a Result
// whose Error names the map and the operation (libbpf's negative errno converted here).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xlb/core/result.h"

namespace xlb::dataplane {

// Untyped core, so the typed wrappers stay header-thin.
class MapRef {
 public:
  MapRef() = default;
  MapRef(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

  Status update_raw(const void* key, const void* value, uint64_t flags) const;
  // true when found, false when the key is absent.
  Result<bool> lookup_raw(const void* key, void* value) const;
  // true when deleted, false when the key was absent.
  Result<bool> erase_raw(const void* key) const;
  // Iterates keys; `key_size` bytes each.
  Result<std::vector<std::vector<uint8_t>>> keys_raw(size_t key_size) const;

 private:
  int fd_ = -1;
  std::string name_;
};

template <typename K, typename V>
class Map {
 public:
  Map() = default;
  explicit Map(MapRef ref) : ref_(std::move(ref)) {}

  Status update(const K& key, const V& value, uint64_t flags = 0 /* BPF_ANY */) const {
    return ref_.update_raw(&key, &value, flags);
  }
  Result<std::optional<V>> lookup(const K& key) const {
    V value{};
    auto found = ref_.lookup_raw(&key, &value);
    if (!found) return found.error();
    if (!*found) return std::optional<V>();
    return std::optional<V>(value);
  }
  Result<bool> erase(const K& key) const { return ref_.erase_raw(&key); }
  Result<std::vector<K>> keys() const {
    auto raw = ref_.keys_raw(sizeof(K));
    if (!raw) return raw.error();
    std::vector<K> out(raw->size());
    for (size_t i = 0; i < raw->size(); i++) __builtin_memcpy(&out[i], (*raw)[i].data(), sizeof(K));
    return out;
  }
  const MapRef& ref() const { return ref_; }
  int fd() const { return ref_.fd(); }

 private:
  MapRef ref_;
};

// Number of possible CPUs (the value count of per-CPU maps).
int possible_cpus();

// A per-CPU array: reads one value per CPU.
template <typename V>
class PerCpuArray {
 public:
  PerCpuArray() = default;
  explicit PerCpuArray(MapRef ref) : ref_(std::move(ref)) {}

  Result<std::vector<V>> lookup_all(uint32_t index) const {
    std::vector<V> values(possible_cpus());
    auto found = ref_.lookup_raw(&index, values.data());
    if (!found) return found.error();
    if (!*found) return Error::invalid(ref_.name() + ": index " + std::to_string(index) +
                                       " out of range");
    return values;
  }
  Status update_all(uint32_t index, const std::vector<V>& values) const {
    return ref_.update_raw(&index, values.data(), 0);
  }
  int fd() const { return ref_.fd(); }

 private:
  MapRef ref_;
};

}  // namespace xlb::dataplane
