// SPDX-License-Identifier: Apache-2.0
// Listeners: the unix socket (security by file mode) and the optional TCP port (security by
// bearer token). Both serve the same Router; handlers never see the transport.
#include "xlb/api/server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "handlers.h"
#include "router.h"

namespace xlb::api {
namespace {

using OutJson = nlohmann::ordered_json;

// A full-sync push (POST /v1/events with "replace") carries a whole registry in one body:
// 16 MiB is about 100,000 backend events, the discovery module's own limit per body.
constexpr size_t kMaxBodyBytes = 16 << 20;
constexpr size_t kWorkerThreads = 4;  // per listener; requests are short
constexpr auto kStartTimeout = std::chrono::seconds(5);

std::string body_text(const OutJson& body) {
  return body.dump(2, ' ', false, OutJson::error_handler_t::replace) + "\n";
}

// Compares the Authorization header with "Bearer <token>" in time that does not depend on
// where they differ (only on the longer length).
bool token_matches(const std::string& header, const std::string& token) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {  // the scheme is not secret
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  }
  std::string_view given = std::string_view(header).substr(kScheme.size());
  const size_t n = std::max(given.size(), token.size());
  volatile unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char a = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    unsigned char b = i < token.size() ? static_cast<unsigned char>(token[i]) : 0;
    diff = diff | static_cast<unsigned char>(a ^ b);
  }
  return diff == 0;
}

// mkdir -p with mode 0755 for the directories it creates.
Status make_parent_dirs(const std::filesystem::path& dir) {
  if (dir.empty()) return {};
  std::filesystem::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (partial == partial.root_path()) continue;
    if (mkdir(partial.c_str(), 0755) == 0) {
      if (chmod(partial.c_str(), 0755) != 0) {  // umask may have taken bits away
        return Error::from_errno(errno, "chmod 0755 " + partial.string());
      }
    } else if (errno != EEXIST) {
      return Error::from_errno(errno, "cannot create directory " + partial.string());
    }
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error::from_errno(ENOTDIR, dir.string() + " is not a directory");
  }
  return {};
}

// Makes `path` free for a new socket: a socket nobody answers on is removed; a live one, or
// anything that is not a socket, is left alone and reported.
Status clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Error::from_errno(errno, "cannot inspect " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error::from_errno(EEXIST, path + " exists and is not a socket; not replacing it");
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::from_errno(errno, "socket(AF_UNIX)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  if (rc == 0) {
    return Error::from_errno(EADDRINUSE, "another server (xlbd?) answers on " + path +
                                             "; stop it first or choose another api_socket");
  }
  if (err != ECONNREFUSED) return Error::from_errno(err, "cannot probe " + path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Error::from_errno(errno, "cannot remove the stale socket " + path);
  }
  return {};
}

// cpp-httplib listens with a backlog of 5; a burst of clients (scripts running xlbctl in
// parallel) would overflow it, and a unix socket then refuses connections at once. listen()
// on a listening socket only changes the backlog.
void raise_backlog(int fd) {
  if (fd >= 0) (void)listen(fd, SOMAXCONN);
}

}  // namespace

struct Server::Impl {
  struct Listener {
    std::unique_ptr<httplib::Server> http;
    std::thread thread;
  };

  explicit Impl(state::ControlPlane& control, ServerOptions options) : opts(std::move(options)) {
    detail::add_routes(router, control);
  }

  // Routes, error bodies and limits shared by both listeners; `token` guards TCP.
  std::unique_ptr<httplib::Server> make_http(const std::optional<std::string>& token) {
    auto http = std::make_unique<httplib::Server>();
    http->new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
    http->set_payload_max_length(kMaxBodyBytes);
    http->set_read_timeout(5, 0);
    http->set_write_timeout(5, 0);
    http->set_keep_alive_timeout(2);

    if (token) {
      http->set_pre_routing_handler(
          [token = *token](const httplib::Request& req, httplib::Response& res) {
            if (token_matches(req.get_header_value("Authorization"), token)) {
              return httplib::Server::HandlerResponse::Unhandled;
            }
            res.status = 401;
            res.set_header("WWW-Authenticate", "Bearer");
            res.set_content(body_text({{"error", "missing or wrong bearer token"}}),
                            "application/json");
            return httplib::Server::HandlerResponse::Handled;
          });
    }

    auto serve = [this](const httplib::Request& req, httplib::Response& res) {
      detail::Reply reply = router.dispatch(req.method, req.target, req.body);
      res.status = reply.status;
      for (const auto& [name, value] : reply.headers) res.set_header(name, value);
      res.set_content(body_text(reply.body), "application/json");
    };
    const std::string any = "[\\s\\S]*";
    http->Get(any, serve);
    http->Post(any, serve);
    http->Put(any, serve);
    http->Patch(any, serve);
    http->Delete(any, serve);
    http->Options(any, serve);

    // Errors the library answers itself (413, unknown methods, bad requests): JSON as well.
    http->set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          static const std::set<std::string> kKnown = {"GET",   "HEAD",   "POST",   "PUT",
                                                       "PATCH", "DELETE", "OPTIONS"};
          std::string message = "HTTP " + std::to_string(res.status);
          if (res.status == 400 && !req.method.empty() && !kKnown.contains(req.method)) {
            res.status = 405;
            message = "method " + req.method + " not supported";
          } else if (res.status == 413) {
            message = "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes";
          }
          res.set_content(body_text({{"error", message}}), "application/json");
          return httplib::Server::HandlerResponse::Handled;
        }));
    http->set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          res.status = 500;
          res.set_content(body_text({{"error", "internal error"}}), "application/json");
        });
    return http;
  }

  Status listen_unix() {
    const std::string& path = opts.socket_path;
    if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
      return Error::invalid("API socket path '" + path + "': want 1 to " +
                            std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " characters");
    }
    XLB_TRY(make_parent_dirs(std::filesystem::path(path).parent_path()));
    XLB_TRY(clear_stale_socket(path));

    auto http = make_http(std::nullopt);
    http->set_address_family(AF_UNIX);
    // The file bind() creates takes its mode from the socket inode: root only from the first
    // moment, with no window in which another user could connect.
    auto fd = std::make_shared<int>(-1);  // the listening socket, seen before bind()
    http->set_socket_options([fd](socket_t sock) {
      *fd = sock;
      (void)fchmod(sock, 0600);
    });
    errno = 0;
    if (!http->bind_to_port(path, 1)) {  // the port is unused for AF_UNIX but must be > 0
      return Error::from_errno(errno != 0 ? errno : EADDRINUSE, "cannot listen on " + path);
    }
    raise_backlog(*fd);
    // Belt and braces: the mode must not depend on how the kernel treats fchmod on sockets.
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || chmod(path.c_str(), 0600) != 0) {
      int err = errno;
      close(*fd);  // bound but never served: the library would not close it
      unlink(path.c_str());
      return Error::from_errno(err, "cannot make " + path + " mode 0600");
    }
    socket_dev = st.st_dev;
    socket_ino = st.st_ino;
    owns_socket = true;
    return run(unix_listener, std::move(http), "unix:" + path);
  }

  Status listen_tcp() {
    if (!opts.tcp_listen) return {};
    if (!opts.token || opts.token->empty()) {
      return Error::invalid("API TCP listener " + *opts.tcp_listen +
                            " needs a token (api_token_file)");
    }
    auto ep = Endpoint::parse(*opts.tcp_listen);
    if (!ep) return Error::invalid("API TCP listener: " + ep.error().message);
    auto http = make_http(opts.token);
    http->set_address_family(ep->address.is_v6() ? AF_INET6 : AF_INET);
    auto fd = std::make_shared<int>(-1);
    http->set_socket_options([fd](socket_t sock) {
      *fd = sock;
      httplib::default_socket_options(sock);  // SO_REUSEADDR
    });
    const std::string host = ep->address.to_string();
    errno = 0;
    int port = ep->port;
    if (port == 0) {
      port = http->bind_to_any_port(host);
      if (port <= 0) port = -1;
    } else if (!http->bind_to_port(host, port)) {
      port = -1;
    }
    if (port < 0) {
      return Error::from_errno(errno != 0 ? errno : EADDRINUSE,
                               "cannot listen on " + *opts.tcp_listen);
    }
    raise_backlog(*fd);
    tcp_port = port;
    return run(tcp_listener, std::move(http), "tcp:" + *opts.tcp_listen);
  }

  // Serves on a thread of its own; returns once the listener accepts connections.
  Status run(Listener& l, std::unique_ptr<httplib::Server> http, const std::string& what) {
    l.http = std::move(http);
    httplib::Server* raw = l.http.get();
    l.thread = std::thread([raw] { raw->listen_after_bind(); });
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (!raw->is_running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return Error::from_errno(ETIMEDOUT, "API listener " + what + " did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return {};
  }

  void stop() {
    for (Listener* l : {&tcp_listener, &unix_listener}) {
      if (l->http) l->http->stop();
      if (l->thread.joinable()) l->thread.join();
      l->http.reset();
    }
    // Remove the socket file only if it is still ours (not replaced by a newer xlbd).
    if (owns_socket) {
      struct stat st {};
      if (lstat(opts.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev &&
          st.st_ino == socket_ino) {
        unlink(opts.socket_path.c_str());
      }
      owns_socket = false;
    }
  }

  ServerOptions opts;
  detail::Router router;
  Listener unix_listener;
  Listener tcp_listener;
  int tcp_port = 0;
  bool owns_socket = false;
  dev_t socket_dev = 0;
  ino_t socket_ino = 0;
};

Result<std::unique_ptr<Server>> Server::start(state::ControlPlane& control, ServerOptions opts) {
  auto impl = std::make_unique<Impl>(control, std::move(opts));
  // Check the TCP settings before touching the socket path.
  if (impl->opts.tcp_listen) {
    if (!impl->opts.token || impl->opts.token->empty()) {
      return Error::invalid("API TCP listener " + *impl->opts.tcp_listen +
                            " needs a token (api_token_file)");
    }
    if (auto ep = Endpoint::parse(*impl->opts.tcp_listen); !ep) {
      return Error::invalid("API TCP listener: " + ep.error().message);
    }
  }
  if (Status st = impl->listen_unix(); !st) {
    impl->stop();
    return st.error();
  }
  if (Status st = impl->listen_tcp(); !st) {
    impl->stop();
    return st.error();
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(); }

void Server::stop() {
  if (impl_) impl_->stop();
}

const std::string& Server::socket_path() const { return impl_->opts.socket_path; }

int Server::tcp_port() const { return impl_->tcp_port; }

}  // namespace xlb::api
