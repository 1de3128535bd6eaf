// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/etcd_keys.h"

#include "fields.h"

namespace xlb::discovery {

std::string etcd_vip_prefix(const std::string& prefix) { return prefix + "/vips/"; }

std::string etcd_spec_key(const std::string& prefix, const state::VipKey& vip) {
  return etcd_vip_prefix(prefix) + vip.to_string() + "/spec";
}

std::string etcd_backend_key(const std::string& prefix, const state::VipKey& vip,
                             const IpAddress& backend) {
  return etcd_vip_prefix(prefix) + vip.to_string() + "/backends/" + backend.to_string();
}

Result<EtcdKey> parse_etcd_key(const std::string& prefix, std::string_view key) {
  const std::string shown(key);
  const Origin origin{"etcd key " + shown};
  auto layout = [&] {
    return " (want PREFIX/vips/VIP/spec or PREFIX/vips/VIP/backends/ADDRESS, e.g. " + prefix +
           "/vips/198.18.200.1:80/tcp/backends/198.18.3.11)";
  };
  const std::string vips = etcd_vip_prefix(prefix);
  if (!key.starts_with(vips)) {
    return rejection(Reject::kBadKey, origin.at("") + "not under " + vips + layout());
  }
  std::string_view rest = key.substr(vips.size());
  EtcdKey out;
  std::string_view vip_text;
  // The VIP's text holds a '/', so the key is read from its end: the layout's words follow it.
  if (rest.ends_with("/spec")) {
    out.is_spec = true;
    vip_text = rest.substr(0, rest.size() - 5);
  } else if (auto b = rest.rfind("/backends/"); b != std::string_view::npos) {
    vip_text = rest.substr(0, b);
    std::string_view address = rest.substr(b + 10);
    auto a = detail::read_backend_address(std::string(address), origin, "");
    if (!a) return a.error();
    if (a->to_string() != address) {
      return rejection(Reject::kBadKey, origin.at("") + "backend '" + std::string(address) +
                                            "' is not in canonical form (write " + a->to_string() +
                                            ": one backend, one key)");
    }
    out.backend = *a;
  } else {
    return rejection(Reject::kBadKey, origin.at("") + "fits no part of the layout" + layout());
  }
  auto vip = detail::read_vip_text(std::string(vip_text), origin, "");
  if (!vip) {
    if (reject_of(vip.error()) == Reject::kBadVip) {
      return rejection(Reject::kBadKey, vip.error().message + layout());
    }
    return vip.error();
  }
  if (vip->to_string() != vip_text) {
    return rejection(Reject::kBadKey, origin.at("") + "VIP '" + std::string(vip_text) +
                                          "' is not in canonical form (write " + vip->to_string() +
                                          ": one VIP, one key)");
  }
  out.vip = *vip;
  return out;
}

Result<Event> parse_etcd_put(const std::string& prefix, std::string_view key,
                             std::string_view value) {
  auto k = parse_etcd_key(prefix, key);
  if (!k) return k.error();
  const Origin origin{"etcd key " + std::string(key)};
  if (value.size() > kMaxValueBytes) {
    return rejection(Reject::kTooLarge, origin.at("") + std::to_string(value.size()) +
                                            " bytes, the limit is " +
                                            std::to_string(kMaxValueBytes));
  }
  auto doc = detail::parse_json_text(value, origin);
  if (!doc) return doc.error();
  Event e;
  e.vip = k->vip;
  if (k->is_spec) {
    detail::ObjectReader r(*doc, origin, "");
    XLB_TRY(r.check(detail::vip_setting_keys({"vip"}),
                    "the VIP's settings, e.g. {\"name\": \"web\"}; each backend is a key of its "
                    "own under .../backends/"));
    auto vip_text = r.string("vip");
    if (!vip_text) return vip_text.error();
    if (*vip_text) {
      auto named = detail::read_vip_text(**vip_text, origin, "vip");
      if (!named) return named.error();
      if (!(*named == k->vip)) {
        return r.fail(Reject::kKeyMismatch, "vip",
                      named->to_string() + " is not the key's VIP " + k->vip.to_string());
      }
    }
    state::VipSpec spec;
    spec.key = k->vip;
    XLB_TRY(detail::read_vip_settings(r, spec));
    e.kind = EventKind::kUpsertVip;
    e.vip_spec = std::move(spec);
    return e;
  }
  auto b = detail::read_backend(*doc, origin, "", /*address_required=*/false);
  if (!b) return b.error();
  if (b->has_address && !(b->spec.address == k->backend)) {
    return rejection(Reject::kKeyMismatch, origin.at("address") + b->spec.address.to_string() +
                                               " is not the key's backend " +
                                               k->backend.to_string());
  }
  b->spec.address = k->backend;
  e.kind = EventKind::kUpsertBackend;
  e.backend = b->spec;
  e.metadata = std::move(b->metadata);
  return e;
}

}  // namespace xlb::discovery
