// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/etcd_gateway.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>

#include "sigpipe_guard.h"

namespace xlb::discovery {
namespace {

using json = nlohmann::json;

class EtcdCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "xlb-etcd"; }
  std::string message(int value) const override {
    switch (static_cast<EtcdErrc>(value)) {
      case EtcdErrc::kUnreachable:
        return "unreachable";
      case EtcdErrc::kProtocol:
        return "protocol error";
      case EtcdErrc::kAuth:
        return "authentication failed";
      case EtcdErrc::kCompacted:
        return "revision compacted";
      case EtcdErrc::kServer:
        return "server error";
      case EtcdErrc::kCancelled:
        return "cancelled";
      case EtcdErrc::kIdle:
        return "idle";
    }
    return "unknown";
  }
};

Error etcd_error(EtcdErrc code, std::string message) {
  return Error{make_error_code(code), std::move(message)};
}

// A failed exchange: certificates that do not verify or load are a configuration problem
// (retrying does not help until someone fixes them); everything else is the peer out of reach.
Error transport_error(const std::string& where, httplib::Error e) {
  switch (e) {
    case httplib::Error::SSLServerVerification:
      return etcd_error(EtcdErrc::kAuth, where +
                                             ": the server's certificate does not verify "
                                             "against ca_file");
    case httplib::Error::SSLLoadingCerts:
      return etcd_error(EtcdErrc::kAuth, where + ": cannot load ca_file / cert_file / key_file");
    case httplib::Error::SSLConnection:
      return etcd_error(EtcdErrc::kUnreachable, where + ": TLS handshake failed");
    case httplib::Error::Connection:
      return etcd_error(EtcdErrc::kUnreachable, where + ": cannot connect");
    case httplib::Error::ConnectionTimeout:
      return etcd_error(EtcdErrc::kUnreachable, where + ": connect timed out");
    case httplib::Error::Read:
      return etcd_error(EtcdErrc::kUnreachable, where + ": connection lost or timed out reading");
    case httplib::Error::Write:
      return etcd_error(EtcdErrc::kUnreachable, where + ": connection lost writing");
    default:
      return etcd_error(EtcdErrc::kUnreachable, where + ": " + httplib::to_string(e));
  }
}

// The gateway writes int64 fields as JSON strings ("revision": "42"); accept numbers too.
int64_t int64_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() ? v : 0;
  }
  return 0;
}

// json::value() throws when the field has another type: never from here.
bool bool_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

std::string string_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An error answer of the gateway: {"error": "...", "code": N, "message": "..."} for unary calls,
// {"error": {"grpc_code": N, "message": "..."}} inside a watch stream.
Error classify(const std::string& where, const json& err_obj) {
  std::string message;
  int64_t code = 0;
  if (err_obj.contains("error") && err_obj["error"].is_object()) {
    message = string_field(err_obj["error"], "message");
    code = int64_field(err_obj["error"], "grpc_code");
  } else {
    message = string_field(err_obj, "message");
    if (message.empty()) message = string_field(err_obj, "error");
    code = int64_field(err_obj, "code");
  }
  if (message.empty()) message = err_obj.dump();
  // gRPC codes: 16 unauthenticated, 7 permission denied; 11 out of range is a compacted read.
  if (code == 16 || code == 7 || message.find("auth") != std::string::npos ||
      message.find("token") != std::string::npos ||
      message.find("permission denied") != std::string::npos) {
    return etcd_error(EtcdErrc::kAuth, where + ": " + message);
  }
  if (message.find("compacted") != std::string::npos) {
    return etcd_error(EtcdErrc::kCompacted, where + ": " + message);
  }
  return etcd_error(EtcdErrc::kServer, where + ": " + message);
}

Result<json> parse_answer(const std::string& where, const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return etcd_error(EtcdErrc::kProtocol, where + ": not a JSON object: " + body.substr(0, 200));
  }
  return j;
}

Result<KeyValue> decode_kv(const json& kv) {
  KeyValue out;
  auto key = base64_decode(string_field(kv, "key"));
  auto value = base64_decode(string_field(kv, "value"));
  if (!key || !value) return etcd_error(EtcdErrc::kProtocol, "bad base64 in a key-value");
  out.key = std::move(*key);
  out.value = std::move(*value);
  out.create_revision = int64_field(kv, "create_revision");
  out.mod_revision = int64_field(kv, "mod_revision");
  out.version = int64_field(kv, "version");
  return out;
}

Result<int64_t> header_revision(const json& j) {
  auto h = j.find("header");
  if (h == j.end() || !h->is_object()) {
    return etcd_error(EtcdErrc::kProtocol, "answer without header");
  }
  return int64_field(*h, "revision");
}

// Finds the end of the first complete top-level JSON object in `buf` from `pos`, keeping the
// scan state across calls so a long stream is scanned once.
struct ObjectScanner {
  size_t pos = 0;
  int depth = 0;
  bool in_string = false;
  bool escape = false;
  size_t start = std::string::npos;

  // Returns [start, end) of the next complete object, or nullopt when more bytes are needed.
  std::optional<std::pair<size_t, size_t>> next(const std::string& buf) {
    for (; pos < buf.size(); pos++) {
      const char c = buf[pos];
      if (in_string) {
        if (escape) {
          escape = false;
        } else if (c == '\\') {
          escape = true;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{') {
        if (depth++ == 0) start = pos;
      } else if (c == '}' && depth > 0) {
        if (--depth == 0) {
          pos++;
          return std::make_pair(start, pos);
        }
      }
    }
    return std::nullopt;
  }
};

}  // namespace

const std::error_category& etcd_category() {
  static const EtcdCategory category;
  return category;
}

std::error_code make_error_code(EtcdErrc e) { return {static_cast<int>(e), etcd_category()}; }

std::optional<EtcdErrc> etcd_errc(const Error& e) {
  if (e.code.category() != etcd_category()) return std::nullopt;
  return static_cast<EtcdErrc>(e.code.value());
}

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string EtcdGateway::prefix_end(std::string prefix) {
  // The smallest key greater than every key with this prefix: strip trailing 0xff bytes and
  // increment the last one ("\0" means "to the end of the keyspace" for an all-0xff prefix).
  while (!prefix.empty() && static_cast<uint8_t>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::string(1, '\0');
  prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

EtcdGateway::EtcdGateway(EtcdOptions options) : options_(std::move(options)) {}

EtcdGateway::~EtcdGateway() {
  detail::SigpipeGuard guard;  // closing a TLS connection writes
  cancel();
  std::lock_guard lock(mu_);
  client_.reset();
  watch_.reset();
}

std::shared_ptr<httplib::Client> EtcdGateway::make_client(
    std::chrono::milliseconds read_timeout) const {
  std::shared_ptr<httplib::Client> c;
  if (options_.cert_file && options_.key_file) {
    c = std::make_shared<httplib::Client>(options_.endpoint, *options_.cert_file,
                                          *options_.key_file);
  } else {
    c = std::make_shared<httplib::Client>(options_.endpoint);
  }
  c->set_connection_timeout(options_.dial_timeout);
  c->set_read_timeout(read_timeout);
  c->set_write_timeout(options_.request_timeout);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  if (options_.ca_file) c->set_ca_cert_path(*options_.ca_file);
  if (options_.endpoint.starts_with("https://")) c->enable_server_certificate_verification(true);
  // Keepalive probes notice a peer that vanished without closing (power loss, partition)
  // within ~11 s, where a silent watch would otherwise wait for its idle timeout.
  c->set_socket_options([](int sock) {
    int on = 1, idle = 5, interval = 2, count = 3;
    setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(sock, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    setsockopt(sock, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  });
  return c;
}

void EtcdGateway::cancel() {
  detail::SigpipeGuard guard;
  cancelled_ = true;
  std::lock_guard lock(mu_);
  // stop() shuts the socket of a request in flight down, so a blocked read returns at once.
  if (watch_) watch_->stop();
  if (client_) client_->stop();
}

Result<std::string> EtcdGateway::post(const std::string& path, const std::string& body) {
  detail::SigpipeGuard guard;
  std::shared_ptr<httplib::Client> c;
  httplib::Headers headers;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return etcd_error(EtcdErrc::kCancelled, "cancelled");
    if (!client_) client_ = make_client(options_.request_timeout);
    c = client_;
    if (!token_.empty()) headers.emplace("Authorization", token_);
  }
  const std::string where = options_.endpoint + path;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = std::move(headers);
  req.headers.emplace("Content-Type", "application/json");
  req.body = body;
  int status = 0;
  std::string answer;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    answer.append(data, len);
    return true;
  };
  auto res = c->send(req);
  if (!res) {
    {
      // A fresh connection next time: this one may be half-dead.
      std::lock_guard lock(mu_);
      if (client_ == c) client_.reset();
    }
    if (cancelled_) return etcd_error(EtcdErrc::kCancelled, "cancelled");
    // The gateway ends error answers with HTTP trailers (Grpc-Trailer-*), which cpp-httplib
    // 0.11 fails to read after the body: the answer itself has arrived, so use it.
    if (status == 0 || status == 200 || answer.empty()) {
      return transport_error(where, res.error());
    }
  } else {
    status = res->status;
  }
  if (status != 200) {
    json j = json::parse(answer, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return etcd_error(status == 401 ? EtcdErrc::kAuth : EtcdErrc::kServer,
                        where + ": HTTP " + std::to_string(status) + " " + answer.substr(0, 200));
    }
    return classify(where, j);
  }
  return answer;
}

Status EtcdGateway::authenticate(const std::string& user, const std::string& password) {
  {
    std::lock_guard lock(mu_);
    token_.clear();
  }
  auto body = post("/v3/auth/authenticate", json{{"name", user}, {"password", password}}.dump());
  if (!body) {
    if (etcd_errc(body.error()) == EtcdErrc::kServer) {
      return etcd_error(EtcdErrc::kAuth, body.error().message);
    }
    return body.error();
  }
  auto j = parse_answer(options_.endpoint + "/v3/auth/authenticate", *body);
  if (!j) return j.error();
  std::string token = string_field(*j, "token");
  if (token.empty()) {
    return etcd_error(EtcdErrc::kAuth, options_.endpoint + ": authenticate gave no token");
  }
  std::lock_guard lock(mu_);
  token_ = std::move(token);
  return ok_status();
}

Result<RangeResponse> EtcdGateway::range(const std::string& key, const std::string& range_end,
                                         int64_t revision, int64_t limit) {
  json req = {{"key", base64_encode(key)}};
  if (!range_end.empty()) req["range_end"] = base64_encode(range_end);
  if (revision > 0) req["revision"] = revision;
  if (limit > 0) req["limit"] = limit;
  auto body = post("/v3/kv/range", req.dump());
  if (!body) return body.error();
  auto j = parse_answer(options_.endpoint + "/v3/kv/range", *body);
  if (!j) return j.error();
  RangeResponse out;
  auto rev = header_revision(*j);
  if (!rev) return rev.error();
  out.revision = *rev;
  out.count = int64_field(*j, "count");
  out.more = bool_field(*j, "more");
  if (auto kvs = j->find("kvs"); kvs != j->end() && kvs->is_array()) {
    out.kvs.reserve(kvs->size());
    for (const auto& kv : *kvs) {
      auto decoded = decode_kv(kv);
      if (!decoded) return decoded.error();
      out.kvs.push_back(std::move(*decoded));
    }
  }
  return out;
}

Result<int64_t> EtcdGateway::put(const std::string& key, const std::string& value) {
  auto body =
      post("/v3/kv/put", json{{"key", base64_encode(key)}, {"value", base64_encode(value)}}.dump());
  if (!body) return body.error();
  auto j = parse_answer(options_.endpoint + "/v3/kv/put", *body);
  if (!j) return j.error();
  return header_revision(*j);
}

Result<int64_t> EtcdGateway::put_all(const std::vector<std::pair<std::string, std::string>>& kvs) {
  json ops = json::array();
  for (const auto& [k, v] : kvs) {
    ops.push_back({{"request_put", {{"key", base64_encode(k)}, {"value", base64_encode(v)}}}});
  }
  auto body = post("/v3/kv/txn", json{{"success", std::move(ops)}}.dump());
  if (!body) return body.error();
  auto j = parse_answer(options_.endpoint + "/v3/kv/txn", *body);
  if (!j) return j.error();
  return header_revision(*j);
}

Result<int64_t> EtcdGateway::delete_range(const std::string& key, const std::string& range_end) {
  json req = {{"key", base64_encode(key)}};
  if (!range_end.empty()) req["range_end"] = base64_encode(range_end);
  auto body = post("/v3/kv/deleterange", req.dump());
  if (!body) return body.error();
  auto j = parse_answer(options_.endpoint + "/v3/kv/deleterange", *body);
  if (!j) return j.error();
  return header_revision(*j);
}

Result<int64_t> EtcdGateway::compact(int64_t revision) {
  auto body = post("/v3/kv/compaction", json{{"revision", revision}, {"physical", true}}.dump());
  if (!body) return body.error();
  auto j = parse_answer(options_.endpoint + "/v3/kv/compaction", *body);
  if (!j) return j.error();
  return header_revision(*j);
}

Status EtcdGateway::watch(const std::string& key, const std::string& range_end,
                          int64_t start_revision,
                          const std::function<bool(const WatchResponse&)>& on_response) {
  detail::SigpipeGuard guard;
  auto c = make_client(options_.watch_idle_timeout);
  httplib::Request req;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return etcd_error(EtcdErrc::kCancelled, "cancelled");
    watch_ = c;
    if (!token_.empty()) req.headers.emplace("Authorization", token_);
  }
  const std::string where = options_.endpoint + "/v3/watch";
  json create = {{"key", base64_encode(key)}, {"progress_notify", true}};
  if (!range_end.empty()) create["range_end"] = base64_encode(range_end);
  if (start_revision > 0) create["start_revision"] = start_revision;
  req.method = "POST";
  req.path = "/v3/watch";
  req.body = json{{"create_request", std::move(create)}}.dump();
  req.headers.emplace("Content-Type", "application/json");

  int status = 0;
  std::string buffer;
  ObjectScanner scanner;
  std::optional<Error> ended;  // why the stream ended, when the receiver decided it
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return true;
  };
  auto last_data = std::chrono::steady_clock::now();
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    last_data = std::chrono::steady_clock::now();
    if (cancelled_) {
      ended = etcd_error(EtcdErrc::kCancelled, "cancelled");
      return false;
    }
    buffer.append(data, len);
    while (auto span = scanner.next(buffer)) {
      json j = json::parse(buffer.begin() + static_cast<std::ptrdiff_t>(span->first),
                           buffer.begin() + static_cast<std::ptrdiff_t>(span->second), nullptr,
                           /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) {
        ended = etcd_error(EtcdErrc::kProtocol, where + ": undecodable watch message");
        return false;
      }
      if (status != 200 || j.contains("error")) {
        ended = classify(where, j);
        return false;
      }
      auto result = j.find("result");
      if (result == j.end() || !result->is_object()) {
        ended = etcd_error(EtcdErrc::kProtocol, where + ": watch message without result");
        return false;
      }
      WatchResponse wr;
      if (auto h = result->find("header"); h != result->end() && h->is_object()) {
        wr.revision = int64_field(*h, "revision");
      }
      wr.created = bool_field(*result, "created");
      wr.canceled = bool_field(*result, "canceled");
      wr.compact_revision = int64_field(*result, "compact_revision");
      wr.cancel_reason = string_field(*result, "cancel_reason");
      if (auto evs = result->find("events"); evs != result->end() && evs->is_array()) {
        wr.events.reserve(evs->size());
        for (const auto& ev : *evs) {
          WatchEvent we;
          // PUT is the enum's zero value, which the gateway leaves out.
          we.is_delete = string_field(ev, "type") == "DELETE";
          auto kv = ev.find("kv");
          if (kv == ev.end() || !kv->is_object()) continue;
          auto decoded = decode_kv(*kv);
          if (!decoded) {
            ended = decoded.error();
            return false;
          }
          we.kv = std::move(*decoded);
          wr.events.push_back(std::move(we));
        }
      }
      if (!on_response(wr)) {
        ended = etcd_error(EtcdErrc::kCancelled, "stopped by the receiver");
        return false;
      }
    }
    // Drop what has been consumed; keep a partial object for the next chunk.
    if (scanner.depth == 0 && scanner.pos == buffer.size()) {
      buffer.clear();
      scanner = ObjectScanner{};
    }
    return true;
  };
  auto res = c->send(req);
  {
    std::lock_guard lock(mu_);
    if (watch_ == c) watch_.reset();
  }
  if (ended) return *ended;
  if (cancelled_) return etcd_error(EtcdErrc::kCancelled, "cancelled");
  if (!res) {
    if (res.error() == httplib::Error::Read && status == 200 &&
        std::chrono::steady_clock::now() - last_data >= options_.watch_idle_timeout * 9 / 10) {
      return etcd_error(
          EtcdErrc::kIdle,
          where + ": silent for " + std::to_string(options_.watch_idle_timeout.count()) + " ms");
    }
    return transport_error(where, res.error());
  }
  if (res->status != 200) {
    json j = json::parse(buffer, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object()) return classify(where, j);
    return etcd_error(res->status == 401 ? EtcdErrc::kAuth : EtcdErrc::kServer,
                      where + ": HTTP " + std::to_string(res->status));
  }
  return etcd_error(EtcdErrc::kUnreachable, where + ": the watch stream ended");
}

}  // namespace xlb::discovery
