// SPDX-License-Identifier: Apache-2.0
#include "router.h"

#include <algorithm>
#include <exception>
#include <set>

namespace xlb::api::detail {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

bool is_placeholder(const std::string& segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

Result<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> params;
  if (query.empty()) return params;
  for (std::string_view pair : split(query, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq));
    if (!key) return Error::invalid("query: " + key.error().message);
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = percent_decode(pair.substr(eq + 1));
      if (!v) return Error::invalid("query parameter '" + *key + "': " + v.error().message);
      value = std::move(*v);
    }
    if (!params.emplace(*key, std::move(value)).second) {
      return Error::invalid("query parameter '" + *key + "' given twice");
    }
  }
  return params;
}

// A VIP pasted with its '/' unencoded splits into ".../198.18.200.1:80/tcp/...": say how to
// write it rather than a bare 404.
bool looks_like_split_vip(const std::vector<std::string>& segments) {
  return std::any_of(segments.begin(), segments.end(),
                     [](const std::string& s) { return s == "tcp" || s == "udp"; });
}

}  // namespace

Reply error_reply(int status, std::string message) {
  return Reply{.status = status, .body = {{"error", std::move(message)}}, .headers = {}};
}

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) {
      return Error::invalid("'" + std::string(text) + "': '%' without two hex digits");
    }
    int hi = hex_value(text[i + 1]);
    int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) {
      return Error::invalid("'" + std::string(text) + "': '%' without two hex digits");
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

void Router::add(std::string method, std::string_view pattern, std::vector<std::string> query,
                 Handler handler) {
  std::vector<std::string> segments;
  for (std::string_view s : split(pattern.substr(1), '/')) segments.emplace_back(s);
  routes_.push_back(Route{.method = std::move(method),
                          .segments = std::move(segments),
                          .query = std::move(query),
                          .handler = std::move(handler)});
}

Reply Router::dispatch(std::string_view method, std::string_view target, std::string body) const {
  try {
    return dispatch_unchecked(method, target, std::move(body));
  } catch (const std::exception& e) {
    return error_reply(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return error_reply(500, "internal error");
  }
}

Reply Router::dispatch_unchecked(std::string_view method, std::string_view target,
                                 std::string body) const {
  if (method == "HEAD") method = "GET";
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query = qmark == std::string_view::npos ? "" : target.substr(qmark + 1);
  if (path.empty() || path.front() != '/') {
    return error_reply(400, "request target '" + std::string(target) + "': want an absolute path");
  }

  std::vector<std::string> segments;
  for (std::string_view raw : split(path.substr(1), '/')) {
    auto s = percent_decode(raw);
    if (!s) return error_reply(400, "path: " + s.error().message);
    segments.push_back(std::move(*s));
  }

  const Route* found = nullptr;
  std::set<std::string> allowed;
  std::vector<std::string> args;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::vector<std::string> captured;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      if (is_placeholder(route.segments[i])) {
        match = !segments[i].empty();
        captured.push_back(segments[i]);
      } else {
        match = route.segments[i] == segments[i];
      }
    }
    if (!match) continue;
    allowed.insert(route.method);
    if (route.method == method && found == nullptr) {
      found = &route;
      args = std::move(captured);
    }
  }

  if (found == nullptr) {
    if (allowed.empty()) {
      std::string msg = "no such resource: " + std::string(path);
      if (looks_like_split_vip(segments)) {
        msg +=
            " (write a VIP as one path segment with '/' encoded as %2F, e.g. "
            "/v1/vips/198.18.200.1:80%2Ftcp; see docs/api.md)";
      }
      return error_reply(404, std::move(msg));
    }
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    Reply reply = error_reply(405, "method " + std::string(method) + " not allowed on " +
                                       std::string(path) + " (allowed: " + allow + ")");
    reply.headers.emplace_back("Allow", allow);
    return reply;
  }

  auto params = parse_query(query);
  if (!params) return error_reply(400, params.error().message);
  for (const auto& [key, value] : *params) {
    if (std::find(found->query.begin(), found->query.end(), key) == found->query.end()) {
      std::string msg = "unknown query parameter '" + key + "'";
      if (!found->query.empty()) {
        msg += " (accepted:";
        for (const auto& q : found->query) msg += " " + q;
        msg += ")";
      }
      return error_reply(400, std::move(msg));
    }
  }

  Request request{.method = std::string(method),
                  .args = std::move(args),
                  .query = std::move(*params),
                  .body = std::move(body)};
  return found->handler(request);
}

}  // namespace xlb::api::detail
