// SPDX-License-Identifier: Apache-2.0
// A real etcd server for tests and benchmarks: started on 127.0.0.1 only, with free ports and a
// data directory under a fresh mkdtemp() directory, and killed by PID: when the object goes
// away, and (PR_SET_PDEATHSIG) when the process that started it dies, even by a crash.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xlb/core/result.h"

namespace xlb::discovery::testing {

struct EtcdServerOptions {
  std::string etcd = "/usr/bin/etcd";
  std::string etcdctl = "/usr/bin/etcdctl";
  std::string temp_parent = "/tmp";  // /dev/shm makes writes (fsync) cheap for benchmarks
  // https on the client port with this certificate and key (e.g. made by openssl req).
  std::optional<std::string> cert_file, key_file;
  std::vector<std::string> extra_args;
  std::chrono::milliseconds ready_timeout{15000};
};

class EtcdServer {
 public:
  static bool available(const EtcdServerOptions& options = {});
  static Result<std::unique_ptr<EtcdServer>> start(EtcdServerOptions options = {});
  ~EtcdServer();

  // http(s)://127.0.0.1:PORT of the running (or last) server.
  std::string endpoint() const;
  uint16_t client_port() const { return client_port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  const std::string& temp_dir() const { return temp_dir_; }

  // SIGKILL and reap: what a crash or a pulled cable looks like to clients.
  void kill();
  // Starts again on the same data directory, on `client_port` (default: the same one).
  Status restart(std::optional<uint16_t> client_port = std::nullopt);
  // A free port on 127.0.0.1 (bound once and released, so briefly racy).
  static Result<uint16_t> free_port();

  // Runs etcdctl (API v3) against this server; its stdout, or an error with its stderr.
  Result<std::string> etcdctl(const std::vector<std::string>& args) const;

 private:
  EtcdServer() = default;
  Status launch();
  Status wait_ready();

  EtcdServerOptions options_;
  std::string temp_dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace xlb::discovery::testing
