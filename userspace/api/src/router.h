// SPDX-License-Identifier: Apache-2.0
// Request routing on the raw request target, independent of the HTTP library.
//
// The path is split on '/' first and each segment percent-decoded after, so a VIP written as
// one segment ("198.18.200.1:80%2Ftcp") stays one argument, and a VIP with a raw '/' does not
// match any route (404 with a hint) instead of being guessed at. Query strings are decoded the
// same way; a parameter a route does not declare is an error (400).
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xlb/core/result.h"

namespace xlb::api::detail {

struct Request {
  std::string method;
  std::vector<std::string> args;             // the {placeholders} of the route, decoded, in order
  std::map<std::string, std::string> query;  // decoded
  std::string body;
};

struct Reply {
  int status = 200;
  nlohmann::ordered_json body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": message} with `status`.
Reply error_reply(int status, std::string message);

// Decodes %XX escapes; a '%' not followed by two hex digits is an error. '+' stays '+'.
Result<std::string> percent_decode(std::string_view text);

class Router {
 public:
  using Handler = std::function<Reply(const Request&)>;

  // `pattern`: "/v1/vips/{vip}/backends/{address}": literal segments and one-segment
  // placeholders. `query`: the query parameters the route accepts.
  void add(std::string method, std::string_view pattern, std::vector<std::string> query,
           Handler handler);

  // Finds the route for `method` and `target` (path and query, as received) and runs it.
  // 404: no route has this path; 405 (with Allow): the path exists for other methods. HEAD is
  // served as GET. Never throws: exceptions from handlers become 500.
  Reply dispatch(std::string_view method, std::string_view target, std::string body) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{...}" = placeholder
    std::vector<std::string> query;
    Handler handler;
  };
  Reply dispatch_unchecked(std::string_view method, std::string_view target,
                           std::string body) const;

  std::vector<Route> routes_;
};

}  // namespace xlb::api::detail
