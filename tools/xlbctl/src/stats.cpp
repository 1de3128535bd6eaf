// SPDX-License-Identifier: Apache-2.0
#include "xlbctl/stats.h"

#include <string>

#include "xlbctl/render.h"

namespace xlbctl {
namespace {

const Json* find_by(const Json* list, std::string_view key, const std::string& value) {
  if (list == nullptr || !list->is_array()) return nullptr;
  for (const auto& item : *list) {
    if (str_field(item, key) == value) return &item;
  }
  return nullptr;
}

const Json* member(const Json* j, std::string_view key) {
  if (j == nullptr || !j->is_object()) return nullptr;
  auto it = j->find(key);
  return it == j->end() ? nullptr : &*it;
}

// Sets packets_per_second and bytes_per_second on `out` from `then` (null: no rates).
void add_rates(Json& out, const Json* then, double seconds) {
  out["packets_per_second"] = nullptr;
  out["bytes_per_second"] = nullptr;
  if (then == nullptr || seconds <= 0) return;
  const uint64_t p0 = uint_field(*then, "packets"), p1 = uint_field(out, "packets");
  const uint64_t b0 = uint_field(*then, "bytes"), b1 = uint_field(out, "bytes");
  if (p1 < p0 || b1 < b0) return;  // counters restarted: no meaningful difference
  out["packets_per_second"] = static_cast<double>(p1 - p0) / seconds;
  out["bytes_per_second"] = static_cast<double>(b1 - b0) / seconds;
}

}  // namespace

Json stats_with_rates(const Json& now, const Json* before, double seconds) {
  Json out = Json::object();
  const bool rates = before != nullptr && seconds > 0;
  out["interval_seconds"] = rates ? Json(seconds) : Json(nullptr);
  Json vips = Json::array();
  const Json* now_vips = member(&now, "vips");
  const Json* then_vips = rates ? member(before, "vips") : nullptr;
  if (now_vips != nullptr && now_vips->is_array()) {
    for (const auto& v : *now_vips) {
      Json vip = v;
      const Json* then_vip = find_by(then_vips, "vip", str_field(v, "vip"));
      add_rates(vip, then_vip, seconds);
      const Json* vip_pps = member(&vip, "packets_per_second");
      Json backends = Json::array();
      if (const Json* list = member(&v, "backends"); list != nullptr && list->is_array()) {
        for (const auto& b : *list) {
          Json backend = b;
          add_rates(backend,
                    find_by(member(then_vip, "backends"), "address", str_field(b, "address")),
                    seconds);
          const Json* pps = member(&backend, "packets_per_second");
          backend["rate_share"] = nullptr;
          if (pps->is_number() && vip_pps->is_number() && vip_pps->get<double>() > 0) {
            backend["rate_share"] = pps->get<double>() / vip_pps->get<double>();
          }
          backends.push_back(std::move(backend));
        }
      }
      vip["backends"] = std::move(backends);
      vips.push_back(std::move(vip));
    }
  }
  out["vips"] = std::move(vips);
  const Json* counters = member(&now, "counters");
  out["counters"] = counters != nullptr ? *counters : Json::object();
  return out;
}

}  // namespace xlbctl
