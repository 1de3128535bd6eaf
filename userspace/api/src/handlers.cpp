// SPDX-License-Identifier: Apache-2.0
#include "handlers.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "json_in.h"
#include "json_out.h"
#include "xlb/api/client.h"

namespace xlb::api::detail {
namespace {

using state::BackendSpec;
using state::DesiredState;
using state::VipKey;

Reply ok(OutJson body, int status = 200) {
  return Reply{.status = status, .body = std::move(body), .headers = {}};
}

Error no_vip(const VipKey& key) { return http_error(404, "no VIP " + key.to_string()); }

Error no_backend(const VipKey& key, const IpAddress& address) {
  return http_error(404, "VIP " + key.to_string() + " has no backend " + address.to_string());
}

void insert_sorted(std::vector<BackendSpec>& backends, BackendSpec backend) {
  auto at = std::lower_bound(backends.begin(), backends.end(), backend,
                             [](const auto& a, const auto& b) { return a.address < b.address; });
  backends.insert(at, std::move(backend));
}

std::vector<BackendSpec>::iterator find_in(std::vector<BackendSpec>& backends,
                                           const IpAddress& address) {
  return std::find_if(backends.begin(), backends.end(),
                      [&](const BackendSpec& b) { return b.address == address; });
}

class Resources {
 public:
  explicit Resources(state::ControlPlane& control) : cp_(control) {}

  Reply status(const Request&) {
    auto s = cp_.status();
    if (!s) return reply_for(s.error());
    return ok(status_json(*s));
  }

  Reply list_vips(const Request&) {
    auto vips = cp_.vips();
    if (!vips) return reply_for(vips.error());
    OutJson list = OutJson::array();
    for (const auto& v : *vips) list.push_back(vip_json(v));
    return ok(std::move(list));
  }

  Reply create_vip(const Request& req) {
    auto body = parse_body(req.body);
    if (!body) return reply_for(body.error());
    auto spec = parse_vip(*body);
    if (!spec) return reply_for(spec.error());
    const VipKey key = spec->key;
    Status st = cp_.mutate([&](DesiredState& d) -> Status {
      if (d.vips.contains(key))
        return http_error(409, "VIP " + key.to_string() + " exists already");
      d.vips.emplace(key, *spec);
      return {};
    });
    if (!st) return reply_for(st.error());
    auto view = find_view(key);
    Reply reply = ok(vip_json(view ? *view : view_of(*spec)), 201);
    reply.headers.emplace_back("Location", vip_path(key));
    return reply;
  }

  Reply get_vip(const Request& req) {
    auto key = path_vip(req);
    if (!key) return reply_for(key.error());
    auto view = find_view(*key);
    if (!view) return reply_for(view.error());
    return ok(vip_json(*view));
  }

  Reply delete_vip(const Request& req) {
    auto key = path_vip(req);
    if (!key) return reply_for(key.error());
    Status st = mutate_configured(*key, std::nullopt, [&](DesiredState& d) -> Status {
      if (d.vips.erase(*key) == 0) return no_vip(*key);
      return {};
    });
    if (!st) return reply_for(st.error());
    return ok({{"deleted", key->to_string()}});
  }

  Reply list_backends(const Request& req) {
    auto key = path_vip(req);
    if (!key) return reply_for(key.error());
    auto view = find_view(*key);
    if (!view) return reply_for(view.error());
    OutJson list = OutJson::array();
    for (const auto& b : view->backends) list.push_back(backend_json(b));
    return ok(std::move(list));
  }

  Reply get_backend(const Request& req) {
    auto key = path_vip(req);
    if (!key) return reply_for(key.error());
    auto address = path_address(req);
    if (!address) return reply_for(address.error());
    auto view = find_backend_view(*key, *address);
    if (!view) return reply_for(view.error());
    return ok(backend_json(*view));
  }

  Reply add_backend(const Request& req) {
    auto key = path_vip(req);
    if (!key) return reply_for(key.error());
    auto body = parse_body(req.body);
    if (!body) return reply_for(body.error());
    auto backend = parse_backend(*body, "");
    if (!backend) return reply_for(backend.error());
    Status st = mutate_configured(*key, std::nullopt, [&](DesiredState& d) -> Status {
      auto it = d.vips.find(*key);
      if (it == d.vips.end()) return no_vip(*key);
      auto& backends = it->second.backends;
      if (find_in(backends, backend->address) != backends.end()) {
        return http_error(409, "VIP " + key->to_string() + " has backend " +
                                   backend->address.to_string() + " already");
      }
      insert_sorted(backends, *backend);
      return {};
    });
    if (!st) return reply_for(st.error());
    auto view = find_backend_view(*key, backend->address);
    Reply reply =
        ok(view ? backend_json(*view)
                : backend_json(state::BackendView{
                      .spec = *backend, .effective_weight = state::effective_weight(*backend)}),
           201);
    reply.headers.emplace_back(
        "Location", vip_path(*key) + "/backends/" + encode_component(backend->address.to_string()));
    return reply;
  }

  Reply delete_backend(const Request& req) {
    auto key = path_vip(req);
    if (!key) return reply_for(key.error());
    auto address = path_address(req);
    if (!address) return reply_for(address.error());
    Status st = mutate_configured(*key, *address, [&](DesiredState& d) -> Status {
      auto it = d.vips.find(*key);
      if (it == d.vips.end()) return no_vip(*key);
      auto& backends = it->second.backends;
      auto b = find_in(backends, *address);
      if (b == backends.end()) return no_backend(*key, *address);
      backends.erase(b);
      return {};
    });
    if (!st) return reply_for(st.error());
    return ok({{"vip", key->to_string()}, {"deleted", address->to_string()}});
  }

  Reply patch_backend(const Request& req) {
    auto key = path_vip(req);
    if (!key) return reply_for(key.error());
    auto address = path_address(req);
    if (!address) return reply_for(address.error());
    auto body = parse_body(req.body);
    if (!body) return reply_for(body.error());
    auto patch = parse_backend_patch(*body);
    if (!patch) return reply_for(patch.error());
    Status st = mutate_configured(*key, *address, [&](DesiredState& d) -> Status {
      auto it = d.vips.find(*key);
      if (it == d.vips.end()) return no_vip(*key);
      auto b = find_in(it->second.backends, *address);
      if (b == it->second.backends.end()) return no_backend(*key, *address);
      if (patch->weight) b->weight = *patch->weight;
      if (patch->state) b->state = *patch->state;
      return {};
    });
    if (!st) return reply_for(st.error());
    auto view = find_backend_view(*key, *address);
    if (!view) return reply_for(view.error());
    return ok(backend_json(*view));
  }

  Reply stats(const Request& req) {
    std::optional<VipKey> only;
    if (auto q = req.query.find("vip"); q != req.query.end()) {
      auto key = parse_vip_text(q->second, "query parameter 'vip'");
      if (!key) return reply_for(key.error());
      only = *key;
    }
    auto vips = cp_.vips();
    if (!vips) return reply_for(vips.error());
    OutJson list = OutJson::array();
    for (const auto& v : *vips) {
      if (!only || v.spec.key == *only) list.push_back(vip_stats_json(v));
    }
    if (only && list.empty()) return reply_for(no_vip(*only));
    auto counters = cp_.counters();
    if (!counters) return reply_for(counters.error());
    return ok({{"vips", std::move(list)}, {"counters", counters_json(*counters)}});
  }

  Reply plan(const Request& req) {
    auto body = parse_body(req.body);
    if (!body) return reply_for(body.error());
    auto plan_req = parse_plan_request(*body);
    if (!plan_req) return reply_for(plan_req.error());
    const VipKey& key = plan_req->vip;
    auto desired = cp_.desired();
    if (!desired) return reply_for(desired.error());
    auto it = desired->vips.find(key);
    if (it == desired->vips.end()) return reply_for(no_vip(key));

    std::vector<BackendSpec> proposed = it->second.backends;
    if (plan_req->remove) {
      auto b = find_in(proposed, *plan_req->remove);
      if (b == proposed.end()) return reply_for(no_backend(key, *plan_req->remove));
      proposed.erase(b);
    }
    if (plan_req->add) {
      if (find_in(proposed, plan_req->add->address) != proposed.end()) {
        return reply_for(http_error(409, "VIP " + key.to_string() + " has backend " +
                                             plan_req->add->address.to_string() + " already"));
      }
      insert_sorted(proposed, *plan_req->add);
    }
    if (plan_req->set_address) {
      auto b = find_in(proposed, *plan_req->set_address);
      if (b == proposed.end()) return reply_for(no_backend(key, *plan_req->set_address));
      if (plan_req->set.weight) b->weight = *plan_req->set.weight;
      if (plan_req->set.state) b->state = *plan_req->set.state;
    }

    auto plan = cp_.plan(key, proposed);
    if (!plan) return reply_for(plan.error());
    return ok(plan_json(key, *plan));
  }

  Reply lookup(const Request& req) {
    auto vip_text = req.query.find("vip");
    auto from_text = req.query.find("from");
    if (vip_text == req.query.end() || from_text == req.query.end()) {
      return reply_for(
          Error::invalid("query parameters 'vip' and 'from' are required, e.g. "
                         "?vip=198.18.200.1:80/tcp&from=198.18.1.2:40000"));
    }
    auto key = parse_vip_text(vip_text->second, "query parameter 'vip'");
    if (!key) return reply_for(key.error());
    auto from = Endpoint::parse(from_text->second);
    if (!from) {
      return reply_for(Error::invalid("query parameter 'from': " + from.error().message));
    }
    if (from->address.family() != key->address.family()) {
      return reply_for(Error::invalid("query parameter 'from': " + from->to_string() +
                                      " is not of the address family of VIP " + key->to_string()));
    }
    auto desired = cp_.desired();
    if (!desired) return reply_for(desired.error());
    if (!desired->vips.contains(*key)) {
      // As the data plane does: a VIP with a port falls back to the port-less VIP of its
      // address, and the flow keeps its destination port in the hash.
      VipKey any = *key;
      any.port = 0;
      if (key->port == 0 || !desired->vips.contains(any)) return reply_for(no_vip(*key));
    } else if (key->port == 0) {
      return reply_for(Error::invalid(
          "VIP " + key->to_string() +
          " is port-less: it serves every port, and the port is part of the flow; ask with the "
          "destination port, e.g. vip=" + key->address.to_string() + ":80/" +
          std::string(state::to_string(key->protocol))));
    }
    auto view = cp_.lookup(*key, *from);
    if (!view) return reply_for(view.error());
    return ok(lookup_json(*key, *from, *view));
  }

  Reply health(const Request&) {
    auto vips = cp_.vips();
    if (!vips) return reply_for(vips.error());
    return ok(health_json(*vips));
  }

  // 202: queued (applied within the debounce window); 400: nothing queued, every bad event is
  // listed; 409: no push source configured.
  Reply push_events(const Request& req) {
    auto pushed = cp_.push_events(req.body);
    if (!pushed) return reply_for(pushed.error());
    OutJson body = push_json(*pushed);
    if (pushed->rejected.empty()) return ok(std::move(body), 202);
    // The message names the bad events itself: clients that show only "error" stay useful.
    std::string message = std::to_string(pushed->rejected.size()) +
                          " event(s) rejected, none of the body was applied:";
    constexpr size_t kShown = 5;
    for (size_t i = 0; i < pushed->rejected.size() && i < kShown; ++i) {
      const auto& r = pushed->rejected[i];
      message += (i ? "; " : " ") + std::string("events[") + std::to_string(r.index) +
                 "]: " + r.reason + ": " + r.message;
    }
    if (pushed->rejected.size() > kShown) message += "; ... (all in \"rejected\")";
    body["error"] = std::move(message);
    return ok(std::move(body), 400);
  }

 private:
  // mutate() edits the configured state. A 404 for a VIP (or a backend of it) that is served
  // all the same comes from service discovery: say so, and where to change it.
  Status mutate_configured(const VipKey& key, const std::optional<IpAddress>& backend,
                           const std::function<Status(DesiredState&)>& change) {
    Status st = cp_.mutate(change);
    if (st || http_status(st.error()) != 404) return st;
    auto served = cp_.desired();
    if (!served) return st;
    auto it = served->vips.find(key);
    if (it == served->vips.end() || (backend && !it->second.find_backend(*backend))) return st;
    std::string what = backend ? "backend " + backend->to_string() + " of VIP " + key.to_string()
                               : "VIP " + key.to_string();
    return http_error(409, what +
                               " comes from service discovery, not from the configuration: "
                               "change it at its source (registry, service file or POST "
                               "/v1/events); the API changes configured entries "
                               "(docs/discovery.md)");
  }

  static Result<VipKey> path_vip(const Request& req) {
    return parse_vip_text(req.args.at(0), "VIP in path");
  }
  static Result<IpAddress> path_address(const Request& req) {
    return parse_address_text(req.args.at(1), "backend address in path");
  }

  Result<state::VipView> find_view(const VipKey& key) {
    auto vips = cp_.vips();
    if (!vips) return vips.error();
    for (auto& v : *vips) {
      if (v.spec.key == key) return std::move(v);
    }
    return no_vip(key);
  }

  Result<state::BackendView> find_backend_view(const VipKey& key, const IpAddress& address) {
    auto view = find_view(key);
    if (!view) return view.error();
    for (auto& b : view->backends) {
      if (b.spec.address == address) return std::move(b);
    }
    return no_backend(key, address);
  }

  state::ControlPlane& cp_;
};

}  // namespace

Error http_error(int status, std::string message) {
  return Error{std::error_code(status, http_category()), std::move(message)};
}

Reply reply_for(const Error& error) {
  int status = http_status(error);
  if (status == 0) {
    if (error.code == std::errc::invalid_argument) {
      status = 400;
    } else if (error.code == std::errc::operation_not_supported) {
      status = 409;  // asks for something this xlbd is not configured to do
    } else {
      status = 500;
    }
  }
  return error_reply(status, status >= 500 ? error.to_string() : error.message);
}

void add_routes(Router& router, state::ControlPlane& control) {
  auto r = std::make_shared<Resources>(control);
  using Method = Reply (Resources::*)(const Request&);
  auto add = [&](const char* method, std::string_view pattern, Method handler,
                 std::vector<std::string> query = {}) {
    router.add(method, pattern, std::move(query),
               [r, handler](const Request& req) { return ((*r).*handler)(req); });
  };
  add("GET", "/v1/status", &Resources::status);
  add("GET", "/v1/vips", &Resources::list_vips);
  add("POST", "/v1/vips", &Resources::create_vip);
  add("GET", "/v1/vips/{vip}", &Resources::get_vip);
  add("DELETE", "/v1/vips/{vip}", &Resources::delete_vip);
  add("GET", "/v1/vips/{vip}/backends", &Resources::list_backends);
  add("POST", "/v1/vips/{vip}/backends", &Resources::add_backend);
  add("GET", "/v1/vips/{vip}/backends/{address}", &Resources::get_backend);
  add("PATCH", "/v1/vips/{vip}/backends/{address}", &Resources::patch_backend);
  add("DELETE", "/v1/vips/{vip}/backends/{address}", &Resources::delete_backend);
  add("GET", "/v1/stats", &Resources::stats, {"vip"});
  add("POST", "/v1/plan", &Resources::plan);
  add("GET", "/v1/lookup", &Resources::lookup, {"vip", "from"});
  add("GET", "/v1/health", &Resources::health);
  add("POST", "/v1/events", &Resources::push_events);
}

}  // namespace xlb::api::detail
