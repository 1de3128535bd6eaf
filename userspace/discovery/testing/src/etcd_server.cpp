// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/testing/etcd_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "xlb/discovery/etcd_gateway.h"

namespace xlb::discovery::testing {
namespace {

// fork + exec with stdout/stderr to files; the child dies with its parent.
Result<pid_t> spawn(const std::vector<std::string>& argv, const std::string& out_path,
                    const std::string& err_path, const std::vector<std::string>& env_add) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The environment is built here: between fork and exec only async-signal-safe calls.
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; e++) env.push_back(*e);
  for (const auto& e : env_add) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno(errno, "fork");
  if (pid == 0) {
    // Never outlive the test: a crashed test must not leave an etcd behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || err < 0 || in < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  return pid;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

bool EtcdServer::available(const EtcdServerOptions& options) {
  return ::access(options.etcd.c_str(), X_OK) == 0 && ::access(options.etcdctl.c_str(), X_OK) == 0;
}

Result<uint16_t> EtcdServer::free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::from_errno(errno, "socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  socklen_t len = sizeof(sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    int err = errno;
    ::close(fd);
    return Error::from_errno(err, "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

Result<std::unique_ptr<EtcdServer>> EtcdServer::start(EtcdServerOptions options) {
  if (!available(options)) {
    return Error::invalid(options.etcd + " or " + options.etcdctl +
                          " is missing (tools/install-deps installs etcd-server and etcd-client)");
  }
  std::unique_ptr<EtcdServer> s(new EtcdServer());
  s->options_ = std::move(options);
  std::string tmpl = s->options_.temp_parent + "/xlb-etcd-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return Error::from_errno(errno, "mkdtemp " + tmpl);
  s->temp_dir_ = tmpl;
  // Free ports are found by binding and releasing: another process may take one in between, so
  // try a few times.
  Status last = Error::invalid("etcd did not start");
  for (int attempt = 0; attempt < 3; attempt++) {
    auto c = free_port();
    auto p = free_port();
    if (!c || !p) return c ? p.error() : c.error();
    if (*c == *p) continue;
    s->client_port_ = *c;
    s->peer_port_ = *p;
    std::error_code ec;
    std::filesystem::remove_all(s->temp_dir_ + "/data", ec);
    last = s->launch();
    if (last) return s;
  }
  return last.error();
}

EtcdServer::~EtcdServer() {
  kill();
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }
}

std::string EtcdServer::endpoint() const {
  return std::string(options_.cert_file ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(client_port_);
}

void EtcdServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Status EtcdServer::restart(std::optional<uint16_t> client_port) {
  kill();
  if (client_port) client_port_ = *client_port;
  return launch();
}

Status EtcdServer::launch() {
  const std::string scheme = options_.cert_file ? "https" : "http";
  const std::string client = scheme + "://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv = {options_.etcd,
                                   "--name=xlbtest",
                                   "--data-dir=" + temp_dir_ + "/data",
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=xlbtest=" + peer,
                                   "--initial-cluster-state=new",
                                   "--initial-cluster-token=xlb-test-" + std::to_string(::getpid()),
                                   "--logger=zap"};
  if (options_.cert_file) {
    argv.push_back("--cert-file=" + *options_.cert_file);
    argv.push_back("--key-file=" + *options_.key_file);
  }
  for (const auto& a : options_.extra_args) argv.push_back(a);
  const std::string log = temp_dir_ + "/etcd.log";
  auto pid = spawn(argv, log, log, {});
  if (!pid) return pid.error();
  pid_ = *pid;
  if (Status st = wait_ready(); !st) {
    kill();
    std::string tail = slurp(log);
    if (tail.size() > 2000) tail = tail.substr(tail.size() - 2000);
    return Error::invalid(st.error().message + "; etcd log: " + tail);
  }
  return ok_status();
}

Status EtcdServer::wait_ready() {
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  Error last = Error::invalid("etcd not ready");
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Error::invalid("etcd exited during start-up (status " + std::to_string(status) + ")");
    }
    EtcdGateway gw(EtcdOptions{.endpoint = endpoint(),
                               .ca_file = options_.cert_file,
                               .dial_timeout = std::chrono::milliseconds(500),
                               .request_timeout = std::chrono::milliseconds(1000)});
    auto r = gw.range("xlb-readiness-probe", "");
    if (r) return ok_status();
    last = r.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Error::invalid("etcd at " + endpoint() + " not ready: " + last.to_string());
}

Result<std::string> EtcdServer::etcdctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {options_.etcdctl, "--endpoints=" + endpoint(),
                                   "--command-timeout=10s"};
  if (options_.cert_file) argv.push_back("--cacert=" + *options_.cert_file);
  for (const auto& a : args) argv.push_back(a);
  const std::string out = temp_dir_ + "/etcdctl.out", err = temp_dir_ + "/etcdctl.err";
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  auto pid = spawn(argv, out, err, {"ETCDCTL_API=3"});
  if (!pid) return pid.error();
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    return Error::invalid("etcdctl" + cmd + " failed: " + slurp(err));
  }
  return slurp(out);
}

}  // namespace xlb::discovery::testing
