// SPDX-License-Identifier: Apache-2.0
// Pieces shared by build() and plan(): both validate the same way and populate the same way,
// so plan() counts exactly the slots build() would write.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/maglev/maglev.h"

namespace xlb::maglev::internal {

// Slot not (yet) owned by any backend, in an owner table.
inline constexpr uint32_t kNoOwner = UINT32_MAX;

// Error unless `ring_size` is prime and within [kMinRingSize, kMaxRingSize].
Status check_ring_size(uint32_t ring_size);

// The backends sorted by id (the order every host agrees on), after checking ids and indices
// are unique and that the backends with a weight fit in `ring_size` slots.
Result<std::vector<const Backend*>> sort_and_check(std::span<const Backend> backends,
                                                   uint32_t ring_size);

// The population (the banded race of maglev.h): for each slot, the position in `sorted` of its
// owner (kNoOwner only when no backend has a weight). `ring_size` and `sorted` must have passed
// the checks above.
std::vector<uint32_t> populate(std::span<const Backend* const> sorted, uint32_t ring_size,
                               uint32_t seed);

}  // namespace xlb::maglev::internal
