// SPDX-License-Identifier: Apache-2.0
// Client of xlbd's local API (docs/api.md), used by xlbctl and the tests.
//
// Every call returns the response's JSON body on a 2xx status. Otherwise the Error says why:
//   * the server answered with an error status: code in http_category() (value = the HTTP
//     status, see http_status()), message = the server's {"error": ...} text;
//   * no server could be reached: code in std::generic_category(): ENOENT (no socket file),
//     EACCES (socket file not writable by this user: it is root-only), ECONNREFUSED (nobody
//     listens), ETIMEDOUT; is_connection_error() is true for all of these.
// A Client holds only its settings; each call opens its own connection, so copies are cheap
// and calls from several threads are fine.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>

#include "xlb/core/result.h"
#include "xlb/state/types.h"

namespace xlb::api {

// Error category of HTTP error statuses: Error::code.value() is the status (400, 404, ...).
const std::error_category& http_category();

// The HTTP status of an error the server sent, 0 for any other error.
int http_status(const Error& error);

// The server could not be reached at all (xlbctl: exit 3).
bool is_connection_error(const Error& error);

// Percent-encodes `text` as one URL path segment or query value: everything but letters,
// digits, '-', '.', '_', '~' and ':' is written %XX ("/" -> "%2F", "[" -> "%5B").
std::string encode_component(std::string_view text);

// "/v1/vips/198.18.200.1:80%2Ftcp": the path of a VIP resource (docs/api.md, "VIP in paths").
std::string vip_path(const state::VipKey& vip);

class Client {
 public:
  // The unix socket of a local xlbd (default /run/xlb/xlbd.sock).
  static Client unix_socket(std::string path);
  // The optional TCP listener; `token` is sent as "Authorization: Bearer <token>".
  static Client tcp(std::string host, int port, std::string token);

  // `path` is the request target as sent: already encoded (see vip_path, encode_component).
  Result<nlohmann::json> get(const std::string& path) const;
  Result<nlohmann::json> post(const std::string& path, const nlohmann::json& body) const;
  Result<nlohmann::json> patch(const std::string& path, const nlohmann::json& body) const;
  Result<nlohmann::json> del(const std::string& path) const;

  // Seconds to wait for connect, read and write (default 10).
  void set_timeout_seconds(int seconds) { timeout_seconds_ = seconds; }
  // "unix:/run/xlb/xlbd.sock" or "tcp:127.0.0.1:9476", for messages.
  std::string describe() const;

 private:
  Client() = default;
  Result<nlohmann::json> request(std::string_view method, const std::string& path,
                                 const nlohmann::json* body) const;

  bool unix_ = true;
  std::string host_;  // socket path, or host name / address
  int port_ = 0;
  std::string token_;
  int timeout_seconds_ = 10;
};

}  // namespace xlb::api
