// SPDX-License-Identifier: Apache-2.0
// udp-dns checks: one query (type A, class IN, recursion desired) for dns_query_name over a
// connected UDP socket.
//
// Up: a well-formed response (header complete, QR set, standard query opcode) carrying the
// query's id, whatever its RCODE. The check asks "is the DNS server on this backend alive and
// answering?": NXDOMAIN and REFUSED are answers a healthy server gives for names it does not
// serve (the default name is the root, which authoritative servers refuse), and judging the
// content is per-zone policy (an exec check with dig can do that). The RCODE is shown in the
// check's result.
// Down: the timeout passes without such a response, or an ICMP port unreachable comes back
// (the connected socket reports it as ECONNREFUSED: no server on that port, detected at once).
// Datagrams with another id or shorter than a header are ignored, not failed: they are not an
// answer to this query.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "probe.h"

namespace xlb::health {
namespace {

std::string rcode_name(unsigned rcode) {
  static const char* const kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                       "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                       "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (rcode < sizeof(kNames) / sizeof(kNames[0])) return kNames[rcode];
  return "RCODE " + std::to_string(rcode);
}

class DnsProbe final : public Probe {
 public:
  using Probe::Probe;

  ~DnsProbe() override {
    if (watch_) prober_.loop().forget(watch_);
    if (fd_ >= 0) ::close(fd_);
  }

  void start() override {
    auto qname = dns_wire_name(request_.spec.dns_query_name);
    if (!qname) return fail("dns_query_name: " + qname.error().message);
    query_id_ = prober_.random_u16();
    std::string query;
    const uint8_t header[12] = {static_cast<uint8_t>(query_id_ >> 8),
                                static_cast<uint8_t>(query_id_),
                                0x01,
                                0x00,
                                0,
                                1,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0};  // RD; one question
    query.append(reinterpret_cast<const char*>(header), sizeof(header));
    query += *qname;
    query.append("\x00\x01\x00\x01", 4);  // type A, class IN

    sockaddr_storage ss;
    const socklen_t len = to_sockaddr(request_.target, ss);
    fd_ = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd_ < 0) return fail("socket: " + errno_text(errno));
    // Connected: the kernel drops datagrams from other sources and reports ICMP errors.
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return fail("connect: " + errno_text(errno));
    }
    auto w = prober_.loop().watch(fd_, EPOLLIN, [this](uint32_t) { on_readable(); });
    if (!w) return fail(w.error().to_string());
    watch_ = *w;
    if (::send(fd_, query.data(), query.size(), MSG_NOSIGNAL) < 0) {
      return fail("send: " + errno_text(errno));
    }
  }

  std::string stage() const override { return "waiting for the DNS response"; }

 private:
  void on_readable() {
    if (finished_) return;
    uint8_t buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == ECONNREFUSED) return fail("port unreachable: no DNS server on the port");
        return fail("recv: " + errno_text(errno));
      }
      if (n < 12) continue;
      const uint16_t id = static_cast<uint16_t>(buf[0] << 8 | buf[1]);
      if (id != query_id_) continue;
      const bool qr = buf[2] & 0x80;
      const unsigned opcode = (buf[2] >> 3) & 0x0f;
      if (!qr || opcode != 0) continue;
      const unsigned rcode = buf[3] & 0x0f;
      const unsigned answers = buf[6] << 8 | buf[7];
      return succeed("DNS " + rcode_name(rcode) + ", " + std::to_string(answers) +
                     (answers == 1 ? " answer" : " answers"));
    }
  }

  int fd_ = -1;
  uint64_t watch_ = 0;
  uint16_t query_id_ = 0;
};

}  // namespace

std::unique_ptr<Probe> make_dns_probe(Prober& prober, uint64_t id, RequestPtr request) {
  return std::make_unique<DnsProbe>(prober, id, std::move(request));
}

}  // namespace xlb::health
