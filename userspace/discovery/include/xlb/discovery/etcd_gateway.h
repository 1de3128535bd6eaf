// SPDX-License-Identifier: Apache-2.0
// A small etcd v3 client over etcd's JSON gateway (HTTP/1.1 + JSON, keys and values base64):
// range, put, delete, compact, authenticate, and watch as one long-lived streaming response.
//
// Why the gateway and cpp-httplib rather than gRPC: the gateway is part of every etcd v3 server
// (3.4 serves /v3/...), it needs no protobuf/gRPC toolchain in the build, and cpp-httplib is
// already a dependency of the API module. It decodes the chunked watch stream, and its Debian
// build has OpenSSL, which makes https:// endpoints with a CA and a client certificate one
// constructor call. The price is JSON decoding per event, which is far below what a registry
// can send (xlb-bench discovery).
//
// Errors carry an EtcdErrc code, so a caller tells "cannot reach" (stale: retry) from "reached,
// but refused" (error: configuration or permissions) from "compacted" (full resync).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "xlb/core/result.h"

namespace httplib {
class Client;
}

namespace xlb::discovery {

enum class EtcdErrc {
  kUnreachable = 1,  // connect, TLS, read or write failed; timeouts
  kProtocol,         // an answer that is not the gateway's JSON
  kAuth,             // authentication failed or a token was refused
  kCompacted,        // the revision asked for was compacted
  kServer,           // any other error etcd answered with
  kCancelled,        // cancel() was called
  kIdle,             // a watch stream was silent for watch_idle_timeout (not a failure)
};
const std::error_category& etcd_category();
std::error_code make_error_code(EtcdErrc e);
std::optional<EtcdErrc> etcd_errc(const Error& e);

struct EtcdOptions {
  std::string endpoint;  // http://HOST:PORT or https://HOST:PORT
  std::optional<std::string> ca_file, cert_file, key_file;
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};
  // A watch stream that stays silent this long ends with kIdle and is re-established (the
  // caller resumes from its revision). TCP keepalive (~11 s) finds a dead peer first; this is
  // the backstop for a peer whose kernel answers but whose etcd no longer sends.
  std::chrono::milliseconds watch_idle_timeout{300000};
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
};

struct RangeResponse {
  int64_t revision = 0;  // the store's revision the read saw
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;
};

struct WatchEvent {
  bool is_delete = false;
  KeyValue kv;  // for deletes: key and mod_revision
};

struct WatchResponse {
  int64_t revision = 0;  // header revision
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the start revision was compacted
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};

class EtcdGateway {
 public:
  explicit EtcdGateway(EtcdOptions options);
  ~EtcdGateway();
  EtcdGateway(const EtcdGateway&) = delete;
  EtcdGateway& operator=(const EtcdGateway&) = delete;

  const std::string& endpoint() const { return options_.endpoint; }

  // Gets a token for user/password; later requests carry it.
  Status authenticate(const std::string& user, const std::string& password);

  // Keys in [key, range_end) at `revision` (0: latest), at most `limit` (0: all).
  Result<RangeResponse> range(const std::string& key, const std::string& range_end,
                              int64_t revision = 0, int64_t limit = 0);
  Result<int64_t> put(const std::string& key, const std::string& value);  // -> revision
  // Several puts in one transaction (one revision; etcd's --max-txn-ops bounds the count).
  Result<int64_t> put_all(const std::vector<std::pair<std::string, std::string>>& kvs);
  Result<int64_t> delete_range(const std::string& key, const std::string& range_end = "");
  Result<int64_t> compact(int64_t revision);

  // Watches [key, range_end) from `start_revision`, handing each response to `on_response`
  // until it returns false, the stream ends or fails, the idle timeout passes, or cancel().
  // Always returns an Error saying why it ended (kCancelled when on_response said stop).
  Status watch(const std::string& key, const std::string& range_end, int64_t start_revision,
               const std::function<bool(const WatchResponse&)>& on_response);

  // From any thread: makes a running or later request fail with kCancelled.
  void cancel();

  // The end of the range of all keys starting with `prefix` (prefix with its last byte + 1).
  static std::string prefix_end(std::string prefix);

 private:
  std::shared_ptr<httplib::Client> make_client(std::chrono::milliseconds read_timeout) const;
  Result<std::string> post(const std::string& path, const std::string& body);

  EtcdOptions options_;
  std::mutex mu_;
  std::string token_;
  std::shared_ptr<httplib::Client> client_;  // unary requests
  std::shared_ptr<httplib::Client> watch_;   // the running watch, if any
  std::atomic<bool> cancelled_{false};
};

std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace xlb::discovery

namespace std {
template <>
struct is_error_code_enum<xlb::discovery::EtcdErrc> : true_type {};
}  // namespace std
