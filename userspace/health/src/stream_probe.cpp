// SPDX-License-Identifier: Apache-2.0
// tcp, http and https checks: one non-blocking TCP connection each.
//
//   tcp    up when the connection is established.
//   http   GET http_path over HTTP/1.1 with Host and "Connection: close"; up when the status is
//          in [http_status_min, http_status_max] and, if http_body_contains is set, the body
//          holds that string within the first kMaxHttpResponseBytes of the response. The body
//          is searched as received (chunked framing is not removed: a string split by a chunk
//          boundary is not found; status pages are short enough for this not to matter).
//   https  the same over TLS (OpenSSL, certificate not verified: see Prober::tls_context), with
//          SNI set to the Host header's name when it is a name.
//
// Every connection ends with a reset, as HAProxy's checks do: neither side keeps a TIME_WAIT
// entry per check, which at thousands of checks a second would pile up; a tcp check resets
// before acknowledging the SYN-ACK, so the backend never makes a socket for it (start()). The
// socket itself is kept for the next check (Prober::acquire_stream_socket), which halves the
// system calls per check. TLS runs
// over memory BIOs, so every byte goes through send(MSG_NOSIGNAL) here and a peer that closes
// early cannot raise SIGPIPE in the daemon.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "probe.h"

namespace xlb::health {
namespace {

std::string tls_error_text() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "connection closed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// Printable excerpt of what a server sent, for "not an HTTP response: '...'".
std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '.';
  }
  return out;
}

struct Verdict {
  bool decided = false;
  bool ok = false;
  std::string detail;
};

// What the response so far says; `complete`: no more bytes will come (EOF or the read limit).
Verdict evaluate_http(std::string_view response, bool complete, bool truncated,
                      const state::HealthCheckSpec& spec) {
  auto line_end = response.find("\r\n");
  if (line_end == std::string_view::npos) {
    if (response.size() > 1024)
      return {true, false, "not an HTTP response: '" + excerpt(response) + "'"};
    if (!complete) return {};
    return {true, false,
            response.empty() ? "connection closed without a response"
                             : "not an HTTP response: '" + excerpt(response) + "'"};
  }
  std::string_view line = response.substr(0, line_end);
  // "HTTP/1.1 200 OK": version, one space, three digits, then a space or the end.
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ') || line[9] < '1' || line[9] > '5' || line[10] < '0' ||
      line[10] > '9' || line[11] < '0' || line[11] > '9') {
    return {true, false, "not an HTTP response: '" + excerpt(line) + "'"};
  }
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  const std::string code = "HTTP " + std::to_string(status);
  if (status < spec.http_status_min || status > spec.http_status_max) {
    return {true, false,
            code + " (want " + std::to_string(spec.http_status_min) + "-" +
                std::to_string(spec.http_status_max) + ")"};
  }
  if (spec.http_body_contains.empty()) return {true, true, code};
  auto headers_end = response.find("\r\n\r\n");
  if (headers_end == std::string_view::npos) {
    if (!complete) return {};
    return {true, false, code + ", but the response ended in its headers"};
  }
  std::string_view body = response.substr(headers_end + 4);
  if (body.find(spec.http_body_contains) != std::string_view::npos) {
    return {true, true, code + ", body has '" + spec.http_body_contains + "'"};
  }
  if (!complete) return {};
  return {
      true, false,
      code + ", but the body lacks '" + spec.http_body_contains + "'" +
          (truncated ? " (in its first " + std::to_string(kMaxHttpResponseBytes / 1024) + " KiB)"
                     : "")};
}

class StreamProbe final : public Probe {
 public:
  using Probe::Probe;

  ~StreamProbe() override {
    if (ssl_) SSL_free(ssl_);  // frees the BIOs too
    if (fd_ >= 0) prober_.release_stream_socket(fd_, broken_);
  }

  void start() override {
    sockaddr_storage ss;
    const socklen_t len = to_sockaddr(request_.target, ss);
    auto fd = prober_.acquire_stream_socket(ss.ss_family, [this](uint32_t ev) { on_event(ev); });
    if (!fd) return fail(fd.error().to_string());
    fd_ = *fd;
    if (request_.spec.type == state::CheckType::kTcp) {
      // Delayed ACK for the handshake (the kernel's "save one ACK" path): the SYN-ACK makes
      // the connection established here, and the abort that follows at once replaces the ACK.
      // The backend drops its half-open entry on the RST: no socket is created, its server
      // never accepts, and the check costs 3 packets instead of 4 (HAProxy's pure-TCP checks
      // do the same). Reset by every abort, so set for each connection.
      const int no = 0;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &no, sizeof(no));
    }
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0) return connected();
    if (errno != EINPROGRESS) {
      // Not a reusable socket any more, whatever went wrong.
      broken_ = true;
      return fail("connect: " + errno_text(errno));
    }
  }

  std::string stage() const override {
    switch (stage_) {
      case Stage::kConnecting:
        return "connecting";
      case Stage::kHandshake:
        return "TLS handshake";
      case Stage::kExchanging:
        return response_.empty() ? "waiting for the response" : "reading the response";
    }
    return "?";
  }

 private:
  enum class Stage { kConnecting, kHandshake, kExchanging };

  void on_event(uint32_t events) {
    if (finished_) return;
    if (stage_ == Stage::kConnecting) {
      // Writable without an error: connected. Only a failure needs SO_ERROR's reason.
      if (events & (EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        return fail("connect: " + errno_text(err != 0 ? err : ECONNRESET));
      }
      return connected();
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      if (!receive()) return;
    }
    drive();
  }

  void connected() {
    const auto type = request_.spec.type;
    if (type == state::CheckType::kTcp) return succeed("connected");
    if (type == state::CheckType::kHttps) {
      std::string error;
      SSL_CTX* ctx = prober_.tls_context(error);
      if (!ctx) return fail(error);
      ssl_ = SSL_new(ctx);
      BIO* in = BIO_new(BIO_s_mem());
      BIO* out = BIO_new(BIO_s_mem());
      if (!ssl_ || !in || !out) {
        if (in) BIO_free(in);
        if (out) BIO_free(out);
        return fail("TLS: " + tls_error_text());
      }
      SSL_set_bio(ssl_, in, out);
      SSL_set_connect_state(ssl_);
      // SNI takes a host name only (RFC 6066): not an address, not a port.
      std::string host = request_.host_header;
      if (!host.empty() && host.front() != '[') host = host.substr(0, host.rfind(':'));
      if (!host.empty() && host.front() != '[' && !IpAddress::parse(host).ok()) {
        SSL_set_tlsext_host_name(ssl_, host.c_str());
      }
      stage_ = Stage::kHandshake;
    } else {
      stage_ = Stage::kExchanging;
    }
    drive();
  }

  std::string request_text() const {
    return "GET " + request_.spec.http_path + " HTTP/1.1\r\nHost: " + request_.host_header +
           "\r\nUser-Agent: xlb-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  }

  // Reads what the socket has; false when the probe has completed.
  bool receive() {
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        received_ = true;
        if (ssl_) {
          BIO_write(SSL_get_rbio(ssl_), buf, static_cast<int>(n));
        } else {
          append(buf, static_cast<size_t>(n));
          if (truncated_) return true;
        }
        continue;
      }
      if (n == 0) {
        eof_ = true;
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      // A reset after the backend said something still lets that count (drive() decides: a
      // complete answer, a TLS alert, garbage).
      if (received_) {
        eof_ = true;
        return true;
      }
      fail("recv: " + errno_text(errno));
      return false;
    }
  }

  void append(const char* data, size_t n) {
    const size_t room = kMaxHttpResponseBytes - response_.size();
    if (n >= room) {
      n = room;
      truncated_ = true;
    }
    response_.append(data, n);
  }

  void drive() {
    if (ssl_ && stage_ == Stage::kHandshake) {
      int r = SSL_do_handshake(ssl_);
      if (r == 1) {
        stage_ = Stage::kExchanging;
      } else {
        int e = SSL_get_error(ssl_, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          return fail("TLS handshake: " + tls_error_text());
        }
        if (eof_) return fail("TLS handshake: connection closed by the backend");
      }
    }
    if (stage_ == Stage::kExchanging && !request_sent_) {
      const std::string req = request_text();
      if (ssl_) {
        // Into a memory BIO: always whole.
        if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) {
          return fail("TLS write: " + tls_error_text());
        }
      } else {
        out_ += req;
      }
      request_sent_ = true;
    }
    if (ssl_ && stage_ == Stage::kExchanging) {
      char buf[16384];
      while (!truncated_) {
        int n = SSL_read(ssl_, buf, sizeof(buf));
        if (n > 0) {
          append(buf, static_cast<size_t>(n));
          continue;
        }
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_ZERO_RETURN) eof_ = true;  // close_notify
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_ZERO_RETURN) {
          ERR_clear_error();
          if (!eof_ && response_.empty()) return fail("TLS read: " + tls_error_text());
          eof_ = true;
        }
        break;
      }
    }
    if (ssl_) {
      // What OpenSSL wants sent (handshake records, the request) goes out through the socket.
      BIO* wbio = SSL_get_wbio(ssl_);
      char buf[16384];
      int n;
      while ((n = BIO_read(wbio, buf, sizeof(buf))) > 0) out_.append(buf, static_cast<size_t>(n));
    }
    if (!flush()) return;
    if (stage_ == Stage::kExchanging) {
      const bool complete = eof_ || truncated_;
      Verdict v = evaluate_http(response_, complete, truncated_, request_.spec);
      if (v.decided) return v.ok ? succeed(v.detail) : fail(v.detail);
      if (complete) return fail("connection closed before a complete response");
    } else if (eof_) {
      return fail("connection closed by the backend");
    }
    // Otherwise wait: the socket is watched edge-triggered for both directions, and receive()
    // and flush() always run until EAGAIN, so the next edge comes when there is more to do.
  }

  // Sends what is queued; false when the probe has completed (failed).
  bool flush() {
    while (!out_.empty()) {
      ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      fail("send: " + errno_text(errno));
      return false;
    }
    return true;
  }

  int fd_ = -1;
  bool broken_ = false;
  Stage stage_ = Stage::kConnecting;
  SSL* ssl_ = nullptr;
  std::string out_;
  std::string response_;
  bool request_sent_ = false;
  bool received_ = false;
  bool eof_ = false;
  bool truncated_ = false;
};

}  // namespace

std::unique_ptr<Probe> make_stream_probe(Prober& prober, uint64_t id, RequestPtr request) {
  return std::make_unique<StreamProbe>(prober, id, std::move(request));
}

}  // namespace xlb::health
