// SPDX-License-Identifier: Apache-2.0
#include "xlb/api/client.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace xlb::api {
namespace {

class HttpCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "xlb.http"; }
  std::string message(int status) const override {
    std::string text = "HTTP " + std::to_string(status);
    switch (status) {
      case 400:
        return text + " Bad Request";
      case 401:
        return text + " Unauthorized";
      case 404:
        return text + " Not Found";
      case 405:
        return text + " Method Not Allowed";
      case 409:
        return text + " Conflict";
      case 413:
        return text + " Payload Too Large";
      case 500:
        return text + " Internal Server Error";
      default:
        return text;
    }
  }
};

bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == ':';
}

}  // namespace

const std::error_category& http_category() {
  static const HttpCategory category;
  return category;
}

int http_status(const Error& error) {
  return error.code.category() == http_category() ? error.code.value() : 0;
}

bool is_connection_error(const Error& error) {
  if (error.code.category() != std::generic_category()) return false;
  switch (error.code.value()) {
    case ENOENT:
    case EACCES:
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

std::string encode_component(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string vip_path(const state::VipKey& vip) {
  return "/v1/vips/" + encode_component(vip.to_string());
}

Client Client::unix_socket(std::string path) {
  Client c;
  c.unix_ = true;
  c.host_ = std::move(path);
  return c;
}

Client Client::tcp(std::string host, int port, std::string token) {
  Client c;
  c.unix_ = false;
  c.host_ = std::move(host);
  c.port_ = port;
  c.token_ = std::move(token);
  return c;
}

std::string Client::describe() const {
  if (unix_) return "unix:" + host_;
  bool v6 = host_.find(':') != std::string::npos;
  return "tcp:" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

Result<nlohmann::json> Client::get(const std::string& path) const {
  return request("GET", path, nullptr);
}
Result<nlohmann::json> Client::post(const std::string& path, const nlohmann::json& body) const {
  return request("POST", path, &body);
}
Result<nlohmann::json> Client::patch(const std::string& path, const nlohmann::json& body) const {
  return request("PATCH", path, &body);
}
Result<nlohmann::json> Client::del(const std::string& path) const {
  return request("DELETE", path, nullptr);
}

Result<nlohmann::json> Client::request(std::string_view method, const std::string& path,
                                       const nlohmann::json* body) const {
  // The port is ignored on a unix socket but must be valid for the library.
  httplib::Client http(host_, unix_ ? 80 : port_);
  if (unix_) http.set_address_family(AF_UNIX);
  http.set_url_encode(false);  // paths come encoded (vip_path, encode_component)
  http.set_connection_timeout(timeout_seconds_, 0);
  http.set_read_timeout(timeout_seconds_, 0);
  http.set_write_timeout(timeout_seconds_, 0);
  if (!token_.empty()) http.set_bearer_token_auth(token_);

  std::string payload;
  if (body != nullptr)
    payload = body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  constexpr const char* kType = "application/json";

  httplib::Result res = [&] {
    if (method == "GET") return http.Get(path);
    if (method == "POST") return http.Post(path, payload, kType);
    if (method == "PATCH") return http.Patch(path, payload, kType);
    return http.Delete(path);
  }();

  const std::string what = std::string(method) + " " + path + " on " + describe();
  if (!res) {
    switch (res.error()) {
      case httplib::Error::Connection: {
        if (!unix_) return Error::from_errno(ECONNREFUSED, "cannot connect to " + describe());
        // Say why a unix socket did not answer: the library does not keep errno.
        struct stat st {};
        if (stat(host_.c_str(), &st) != 0) {
          return Error::from_errno(ENOENT,
                                   "cannot connect to " + describe() + " (is xlbd running?)");
        }
        if (access(host_.c_str(), R_OK | W_OK) != 0) {
          return Error::from_errno(
              EACCES, "cannot connect to " + describe() + " (the API socket is for root only)");
        }
        return Error::from_errno(ECONNREFUSED,
                                 "cannot connect to " + describe() + " (is xlbd running?)");
      }
      case httplib::Error::ConnectionTimeout:
        return Error::from_errno(ETIMEDOUT, "cannot connect to " + describe());
      case httplib::Error::Read:
        return Error::from_errno(EIO, what + ": no complete response (timeout or server gone)");
      case httplib::Error::Write:
        return Error::from_errno(EIO, what + ": could not send the request");
      default:
        return Error::from_errno(EIO, what + ": " + httplib::to_string(res.error()));
    }
  }

  const int status = res->status;
  nlohmann::json parsed;
  bool json_ok = true;
  if (!res->body.empty()) {
    parsed = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    json_ok = !parsed.is_discarded();
  }
  if (status >= 200 && status < 300) {
    if (!json_ok) return Error::from_errno(EPROTO, what + ": the response is not valid JSON");
    return parsed;
  }
  std::string message;
  if (json_ok && parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    message = parsed["error"].get<std::string>();
  } else {
    message = res->body.empty() ? what : what + ": " + res->body;
  }
  return Error{std::error_code(status, http_category()), std::move(message)};
}

}  // namespace xlb::api
