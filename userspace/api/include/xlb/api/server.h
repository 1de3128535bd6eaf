// SPDX-License-Identifier: Apache-2.0
// xlbd's local API: HTTP/JSON over a unix socket (root only), and optionally over TCP with a
// bearer token. The resources are described in docs/api.md; every handler goes through
// state::ControlPlane, every change through ControlPlane::mutate (transactional).
//
// Each listener runs on its own thread (plus cpp-httplib's worker pool); start() returns once
// they accept connections, stop() (or the destructor) closes them and removes the socket file.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "xlb/api/client.h"  // the matching client, for xlbctl
#include "xlb/core/result.h"
#include "xlb/state/control_plane.h"

namespace xlb::api {

struct ServerOptions {
  // Created with mode 0600 (root only); missing parent directories are created 0755. A stale
  // socket file (nobody answers on it) is replaced; start() fails with EADDRINUSE if a server
  // answers on it, and with EEXIST if the path is something other than a socket.
  std::string socket_path = "/run/xlb/xlbd.sock";
  // "127.0.0.1:9476" or "[::1]:9476"; port 0 picks a free port (see Server::tcp_port()).
  std::optional<std::string> tcp_listen;
  // Required with tcp_listen: requests on TCP must carry "Authorization: Bearer <token>".
  std::optional<std::string> token;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> start(state::ControlPlane& control, ServerOptions opts);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Stops both listeners, waits for their threads, removes the socket file. Idempotent.
  void stop();

  const std::string& socket_path() const;
  // The TCP port listened on (useful with port 0), or 0 without a TCP listener.
  int tcp_port() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xlb::api
