// SPDX-License-Identifier: Apache-2.0
// The local API end to end: a real Server on a unix socket in a temporary directory (and a TCP
// listener on 127.0.0.1 where tested), the real Client, a FakeControlPlane behind them.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "fake_control_plane.h"
#include "xlb/api/server.h"

namespace xlb::api {
namespace {

using nlohmann::json;
using state::BackendSpec;
using state::BackendState;
using state::VipKey;
using state::VipSpec;

constexpr const char* kWeb = "/v1/vips/198.18.200.1:80%2Ftcp";
constexpr const char* kDns = "/v1/vips/%5B2001:db8:200::1%5D:443%2Fudp";

VipKey key(std::string_view text) { return *VipKey::parse(text); }
IpAddress ip(std::string_view text) { return *IpAddress::parse(text); }

state::DesiredState initial_state() {
  state::DesiredState s;
  VipSpec web;
  web.key = key("198.18.200.1:80/tcp");
  web.name = "web";
  web.backends = {BackendSpec{.address = ip("198.18.3.11")},
                  BackendSpec{.address = ip("198.18.3.12"), .weight = 3}};
  VipSpec dns;
  dns.key = key("[2001:db8:200::1]:443/udp");
  dns.name = "dns";
  dns.hash = state::HashMode::kSourceOnly;
  dns.backends = {BackendSpec{.address = ip("2001:db8:3::11")}};
  s.vips.emplace(web.key, web);
  s.vips.emplace(dns.key, dns);
  return s;
}

// A fresh directory under /tmp (never /run), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/xlb-api-test-XXXXXX";
    const char* made = mkdtemp(tmpl);
    EXPECT_NE(made, nullptr) << "mkdtemp: " << std::strerror(errno);
    path_ = made ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Leaves a socket file nobody listens on, as a crashed xlbd would.
void make_stale_socket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  ASSERT_EQ(listen(fd, 1), 0);
  close(fd);
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode;
}

#define EXPECT_HTTP_ERROR(call, status, needle)                                          \
  do {                                                                                   \
    auto r_ = (call);                                                                    \
    ASSERT_FALSE(r_.ok()) << #call << " succeeded: " << r_->dump();                      \
    EXPECT_EQ(http_status(r_.error()), status) << r_.error().to_string();                \
    EXPECT_NE(r_.error().message.find(needle), std::string::npos)                        \
        << "message '" << r_.error().message << "' does not mention '" << needle << "'"; \
  } while (0)

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_path_ = dir_.path() + "/run/xlb/xlbd.sock";
    auto server = Server::start(fake_, {.socket_path = socket_path_});
    ASSERT_TRUE(server.ok()) << server.error().to_string();
    server_ = std::move(*server);
  }

  const json& find_backend(const json& list, const std::string& address) {
    for (const auto& b : list) {
      if (b["address"] == address) return b;
    }
    static const json none;
    ADD_FAILURE() << "no backend " << address << " in " << list.dump();
    return none;
  }

  TempDir dir_;
  test::FakeControlPlane fake_{initial_state()};
  std::string socket_path_;
  std::unique_ptr<Server> server_;
  Client api() const { return Client::unix_socket(socket_path_); }
};

// ---- Paths and the client ------------------------------------------------------------------

TEST(ApiPaths, VipPathPercentEncodesOneSegment) {
  EXPECT_EQ(vip_path(key("198.18.200.1:80/tcp")), kWeb);
  EXPECT_EQ(vip_path(key("[2001:db8:200::1]:443/udp")), kDns);
  EXPECT_EQ(vip_path(key("198.18.200.2/udp")), "/v1/vips/198.18.200.2%2Fudp");
  EXPECT_EQ(encode_component("a b+c%"), "a%20b%2Bc%25");
}

TEST(ApiClient, ConnectionFailuresCarryErrno) {
  TempDir dir;
  auto missing = Client::unix_socket(dir.path() + "/none.sock").get("/v1/status");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, std::errc::no_such_file_or_directory);
  EXPECT_TRUE(is_connection_error(missing.error()));
  EXPECT_EQ(http_status(missing.error()), 0);

  const std::string stale = dir.path() + "/stale.sock";
  make_stale_socket(stale);
  auto refused = Client::unix_socket(stale).get("/v1/status");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, std::errc::connection_refused);
  EXPECT_TRUE(is_connection_error(refused.error()));
}

// ---- The unix socket -----------------------------------------------------------------------

TEST_F(ApiTest, SocketIsRootOnlyAndItsDirectoryIsCreated) {
  mode_t mode = mode_of(socket_path_);
  EXPECT_TRUE(S_ISSOCK(mode));
  EXPECT_EQ(mode & 07777, 0600u);
  mode_t dir_mode = mode_of(dir_.path() + "/run/xlb");
  EXPECT_TRUE(S_ISDIR(dir_mode));
  EXPECT_EQ(dir_mode & 07777, 0755u);
}

TEST_F(ApiTest, SecondServerOnALiveSocketIsRefused) {
  test::FakeControlPlane other;
  auto second = Server::start(other, {.socket_path = socket_path_});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, std::errc::address_in_use);
  EXPECT_NE(second.error().message.find(socket_path_), std::string::npos);
  // The first server still owns the socket and answers.
  auto vips = api().get("/v1/vips");
  ASSERT_TRUE(vips.ok()) << vips.error().to_string();
  EXPECT_EQ(vips->size(), 2u);
}

TEST_F(ApiTest, StopRemovesTheSocket) {
  server_->stop();
  EXPECT_EQ(mode_of(socket_path_), 0u);
  auto r = api().get("/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(is_connection_error(r.error()));
  server_->stop();  // idempotent
}

TEST(ApiSocket, StaleSocketFileIsReplaced) {
  TempDir dir;
  const std::string path = dir.path() + "/xlbd.sock";
  make_stale_socket(path);
  ASSERT_TRUE(S_ISSOCK(mode_of(path)));
  test::FakeControlPlane fake{initial_state()};
  auto server = Server::start(fake, {.socket_path = path});
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  EXPECT_EQ(mode_of(path) & 07777, 0600u);
  auto status = Client::unix_socket(path).get("/v1/status");
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ((*status)["interface"], "xlb0");
}

TEST(ApiSocket, SomethingElseAtThePathIsNotReplaced) {
  TempDir dir;
  const std::string path = dir.path() + "/xlbd.sock";
  std::ofstream(path) << "precious";
  test::FakeControlPlane fake;
  auto server = Server::start(fake, {.socket_path = path});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.error().code, std::errc::file_exists);
  EXPECT_TRUE(S_ISREG(mode_of(path)));
}

// ---- TCP with a bearer token ---------------------------------------------------------------

TEST(ApiTcp, RequiresTheBearerToken) {
  TempDir dir;
  test::FakeControlPlane fake{initial_state()};
  auto server = Server::start(fake, {.socket_path = dir.path() + "/xlbd.sock",
                                     .tcp_listen = "127.0.0.1:0",
                                     .token = "s3cret-token"});
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  const int port = (*server)->tcp_port();
  ASSERT_GT(port, 0);

  auto good = Client::tcp("127.0.0.1", port, "s3cret-token").get("/v1/status");
  ASSERT_TRUE(good.ok()) << good.error().to_string();
  EXPECT_EQ((*good)["prog_id"], 42);

  EXPECT_HTTP_ERROR(Client::tcp("127.0.0.1", port, "").get("/v1/status"), 401, "token");
  EXPECT_HTTP_ERROR(Client::tcp("127.0.0.1", port, "s3cret-tokem").get("/v1/status"), 401, "token");
  EXPECT_HTTP_ERROR(Client::tcp("127.0.0.1", port, "s3cret-token-and-more").get("/v1/vips"), 401,
                    "token");
  // Refused requests change nothing, even mutations.
  EXPECT_HTTP_ERROR(Client::tcp("127.0.0.1", port, "wrong").del(kWeb), 401, "token");
  EXPECT_EQ(fake.snapshot(), initial_state());
  // The unix socket needs no token.
  auto local = Client::unix_socket(dir.path() + "/xlbd.sock").get("/v1/status");
  EXPECT_TRUE(local.ok());
}

TEST(ApiTcp, TcpWithoutATokenIsRefused) {
  TempDir dir;
  test::FakeControlPlane fake;
  auto server =
      Server::start(fake, {.socket_path = dir.path() + "/xlbd.sock", .tcp_listen = "127.0.0.1:0"});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.error().code, std::errc::invalid_argument);
  EXPECT_NE(server.error().message.find("token"), std::string::npos);
  EXPECT_EQ(mode_of(dir.path() + "/xlbd.sock"), 0u);  // nothing left behind
}

TEST(ApiTcp, BadListenAddressIsRefused) {
  TempDir dir;
  test::FakeControlPlane fake;
  auto server = Server::start(
      fake,
      {.socket_path = dir.path() + "/xlbd.sock", .tcp_listen = "localhost-ish", .token = "t"});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(mode_of(dir.path() + "/xlbd.sock"), 0u);
}

// ---- Status, VIPs ----------------------------------------------------------------------------

TEST_F(ApiTest, Status) {
  auto s = api().get("/v1/status");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ((*s)["version"], "0.1.0-fake");
  EXPECT_EQ((*s)["attach_mode"], "native");
  EXPECT_EQ((*s)["attach_method"], "bpf_link");
  EXPECT_EQ((*s)["adopted"], false);
  for (const char* field :
       {"interface", "pin_dir", "uptime_seconds", "config_file", "reconcile_total",
        "reconcile_errors", "reconcile_seconds_sum", "last_reconcile_seconds", "last_error"}) {
    EXPECT_TRUE(s->contains(field)) << field;
  }
}

TEST_F(ApiTest, ListVips) {
  auto vips = api().get("/v1/vips");
  ASSERT_TRUE(vips.ok()) << vips.error().to_string();
  ASSERT_TRUE(vips->is_array());
  ASSERT_EQ(vips->size(), 2u);
  const json* web = nullptr;
  for (const auto& v : *vips) {
    if (v["vip"] == "198.18.200.1:80/tcp") web = &v;
  }
  ASSERT_NE(web, nullptr);
  EXPECT_EQ((*web)["name"], "web");
  EXPECT_EQ((*web)["hash"], "5tuple");
  EXPECT_EQ((*web)["no_lru"], false);
  EXPECT_GT((*web)["ring_size"].get<uint32_t>(), 0u);
  EXPECT_TRUE((*web)["ring_size_requested"].is_null());
  ASSERT_EQ((*web)["backends"].size(), 2u);
  const json& b = (*web)["backends"][1];
  EXPECT_EQ(b["address"], "198.18.3.12");
  EXPECT_EQ(b["weight"], 3);
  EXPECT_EQ(b["state"], "active");
  EXPECT_EQ(b["effective_weight"], 3);
  EXPECT_EQ(b["packets"], 2000);
  EXPECT_TRUE(b["index"].is_number());
  // Weight 3 against 1: about three quarters of the ring.
  double share = b["slots"].get<double>() / (*web)["ring_size"].get<double>();
  EXPECT_NEAR(share, 0.75, 0.01);
  EXPECT_EQ((*web)["packets"], 1000 + 2000 + 10);
}

TEST_F(ApiTest, GetVipByItsEncodedKey) {
  auto web = api().get(kWeb);
  ASSERT_TRUE(web.ok()) << web.error().to_string();
  EXPECT_EQ((*web)["vip"], "198.18.200.1:80/tcp");
  auto dns = api().get(kDns);
  ASSERT_TRUE(dns.ok()) << dns.error().to_string();
  EXPECT_EQ((*dns)["vip"], "[2001:db8:200::1]:443/udp");
  EXPECT_EQ((*dns)["hash"], "src");
  // Lower-case escapes decode the same.
  EXPECT_TRUE(api().get("/v1/vips/%5b2001:db8:200::1%5d:443%2fudp").ok());
}

TEST_F(ApiTest, VipPathErrors) {
  // '/' not encoded: no such route, and the message says how to write it.
  EXPECT_HTTP_ERROR(api().get("/v1/vips/198.18.200.1:80/tcp"), 404, "%2F");
  EXPECT_HTTP_ERROR(api().get("/v1/vips/not-a-vip"), 400, "VIP");
  EXPECT_HTTP_ERROR(api().get("/v1/vips/198.18.200.1:80%2Fsctp"), 400, "protocol");
  EXPECT_HTTP_ERROR(api().get("/v1/vips/198.18.200.1:80%2"), 400, "%");
  EXPECT_HTTP_ERROR(api().get("/v1/vips/198.18.200.9:80%2Ftcp"), 404, "198.18.200.9:80/tcp");
}

TEST_F(ApiTest, CreateVip) {
  json body = {{"vip", "198.18.200.7:443/tcp"},
               {"name", "tls"},
               {"no_lru", true},
               {"hash", "no-sport"},
               {"gue", true},
               {"ring_size", 1009},
               {"backends",
                {{{"address", "198.18.3.22"}, {"weight", 2}},
                 {{"address", "198.18.3.21"}, {"state", "draining"}}}}};
  auto created = api().post("/v1/vips", body);
  ASSERT_TRUE(created.ok()) << created.error().to_string();
  EXPECT_EQ((*created)["vip"], "198.18.200.7:443/tcp");
  EXPECT_EQ((*created)["name"], "tls");
  EXPECT_EQ((*created)["no_lru"], true);
  EXPECT_EQ((*created)["gue"], true);
  EXPECT_EQ((*created)["icmp_too_big"], false);
  EXPECT_EQ((*created)["hash"], "no-sport");
  EXPECT_EQ((*created)["ring_size"], 1009);
  EXPECT_EQ((*created)["ring_size_requested"], 1009);
  ASSERT_EQ((*created)["backends"].size(), 2u);
  // Sorted by address, whatever the request's order.
  EXPECT_EQ((*created)["backends"][0]["address"], "198.18.3.21");
  EXPECT_EQ((*created)["backends"][0]["state"], "draining");
  EXPECT_EQ((*created)["backends"][0]["effective_weight"], 0);
  EXPECT_EQ((*created)["backends"][0]["slots"], 0);
  EXPECT_EQ((*created)["backends"][1]["slots"], 1009);

  auto stored = fake_.snapshot().vips.at(key("198.18.200.7:443/tcp"));
  EXPECT_EQ(stored.name, "tls");
  EXPECT_EQ(stored.ring_size, 1009u);
  EXPECT_TRUE(api().get("/v1/vips/198.18.200.7:443%2Ftcp").ok());

  // A port-less VIP with defaults.
  auto bare = api().post("/v1/vips", {{"vip", "198.18.200.8/udp"}});
  ASSERT_TRUE(bare.ok()) << bare.error().to_string();
  EXPECT_EQ((*bare)["backends"].size(), 0u);
  EXPECT_EQ((*bare)["name"], "");
}

TEST_F(ApiTest, CreateExistingVipIsAConflict) {
  const uint64_t commits = fake_.commits();
  EXPECT_HTTP_ERROR(api().post("/v1/vips", {{"vip", "198.18.200.1:80/tcp"}}), 409, "exists");
  EXPECT_EQ(fake_.commits(), commits);
  EXPECT_EQ(fake_.snapshot(), initial_state());
}

TEST_F(ApiTest, CreateVipRejectsBadInput) {
  auto post = [&](const json& body) { return api().post("/v1/vips", body); };
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"colour", "blue"}}), 400, "'colour'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"gue", "yes"}}), 400, "'gue'");
  EXPECT_HTTP_ERROR(post({{"name", "x"}}), 400, "'vip': required");
  EXPECT_HTTP_ERROR(post({{"vip", 17}}), 400, "'vip'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80"}}), 400, "PROTOCOL");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"hash", "random"}}), 400, "'hash'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"ring_size", -5}}), 400, "'ring_size'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"ring_size", 1.5}}), 400, "'ring_size'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"backends", "198.18.3.1"}}), 400,
                    "'backends'");
  EXPECT_HTTP_ERROR(
      post({{"vip", "198.18.200.7:80/tcp"}, {"backends", {{{"address", "198.18.3.300"}}}}}), 400,
      "'backends[0].address'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"},
                          {"backends", {{{"address", "198.18.3.1"}, {"weight", "heavy"}}}}}),
                    400, "'backends[0].weight'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"},
                          {"backends", {{{"address", "198.18.3.1"}, {"port", 80}}}}}),
                    400, "'backends[0].port'");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"},
                          {"backends", {{{"address", "198.18.3.1"}, {"state", "gone"}}}}}),
                    400, "'backends[0].state'");
  EXPECT_HTTP_ERROR(post(json::array({1, 2})), 400, "body");
  // Rejected by state::validate inside mutate(): still 400, still nothing changed.
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"ring_size", 1000}}), 400, "prime");
  EXPECT_HTTP_ERROR(post({{"vip", "198.18.200.7:80/tcp"}, {"name", "web"}}), 400, "'web'");
  EXPECT_HTTP_ERROR(
      post({{"vip", "198.18.200.7:80/tcp"},
            {"backends", {{{"address", "198.18.3.1"}}, {{"address", "198.18.3.1"}}}}}),
      400, "twice");
  EXPECT_EQ(fake_.snapshot(), initial_state());
}

TEST_F(ApiTest, MalformedBodies) {
  // Not JSON at all: sent by hand, the Client always sends valid JSON.
  auto raw = [&](const std::string& body) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socket_path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::string req = "POST /v1/vips HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    EXPECT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string reply;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) reply.append(buf, n);
    close(fd);
    return reply;
  };
  std::string reply = raw("{\"vip\": ");
  EXPECT_NE(reply.find("HTTP/1.1 400"), std::string::npos) << reply;
  EXPECT_NE(reply.find("not valid JSON"), std::string::npos) << reply;
  reply = raw("");
  EXPECT_NE(reply.find("HTTP/1.1 400"), std::string::npos) << reply;
  EXPECT_NE(reply.find("empty"), std::string::npos) << reply;
  EXPECT_EQ(fake_.snapshot(), initial_state());
}

TEST_F(ApiTest, DeleteVip) {
  auto deleted = api().del(kWeb);
  ASSERT_TRUE(deleted.ok()) << deleted.error().to_string();
  EXPECT_EQ((*deleted)["deleted"], "198.18.200.1:80/tcp");
  EXPECT_FALSE(fake_.snapshot().vips.contains(key("198.18.200.1:80/tcp")));
  EXPECT_HTTP_ERROR(api().get(kWeb), 404, "no VIP");
  EXPECT_HTTP_ERROR(api().del(kWeb), 404, "no VIP");
  auto rest = api().get("/v1/vips");
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 1u);
}

// ---- Backends ----------------------------------------------------------------------------------

TEST_F(ApiTest, ListAndGetBackends) {
  auto list = api().get(std::string(kWeb) + "/backends");
  ASSERT_TRUE(list.ok()) << list.error().to_string();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0]["address"], "198.18.3.11");
  auto one = api().get(std::string(kDns) + "/backends/2001:db8:3::11");
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  EXPECT_EQ((*one)["address"], "2001:db8:3::11");
  EXPECT_HTTP_ERROR(api().get(std::string(kDns) + "/backends/2001:db8:3::99"), 404, "no backend");
  EXPECT_HTTP_ERROR(api().get("/v1/vips/198.18.200.9:80%2Ftcp/backends"), 404, "no VIP");
}

TEST_F(ApiTest, AddBackend) {
  const std::string path = std::string(kWeb) + "/backends";
  auto added = api().post(path, {{"address", "198.18.3.13"}, {"weight", 2}});
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  EXPECT_EQ((*added)["address"], "198.18.3.13");
  EXPECT_EQ((*added)["weight"], 2);
  EXPECT_EQ((*added)["state"], "active");
  EXPECT_GT((*added)["slots"].get<uint32_t>(), 0u);
  const auto& stored = fake_.snapshot().vips.at(key("198.18.200.1:80/tcp")).backends;
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[2].address, ip("198.18.3.13"));  // kept sorted

  EXPECT_HTTP_ERROR(api().post(path, {{"address", "198.18.3.13"}}), 409, "already");
  EXPECT_HTTP_ERROR(
      api().post("/v1/vips/198.18.200.9:80%2Ftcp/backends", {{"address", "198.18.3.13"}}), 404,
      "no VIP");
  EXPECT_HTTP_ERROR(api().post(path, {{"address", "198.18.3"}}), 400, "'address'");
  EXPECT_HTTP_ERROR(api().post(path, {{"address", "198.18.3.14"}, {"wieght", 2}}), 400, "'wieght'");
  EXPECT_HTTP_ERROR(api().post(path, {{"weight", 2}}), 400, "'address': required");
  EXPECT_HTTP_ERROR(api().post(path, {{"address", "198.18.3.14"}, {"weight", 5000000000LL}}), 400,
                    "out of range");
  EXPECT_EQ(fake_.snapshot().vips.at(key("198.18.200.1:80/tcp")).backends.size(), 3u);
}

TEST_F(ApiTest, DrainUndrainAndReweigh) {
  const std::string path = std::string(kWeb) + "/backends/198.18.3.12";
  auto drained = api().patch(path, {{"state", "draining"}});
  ASSERT_TRUE(drained.ok()) << drained.error().to_string();
  EXPECT_EQ((*drained)["state"], "draining");
  EXPECT_EQ((*drained)["weight"], 3);
  EXPECT_EQ((*drained)["effective_weight"], 0);
  EXPECT_EQ((*drained)["slots"], 0);

  auto active = api().patch(path, {{"state", "active"}, {"weight", 1}});
  ASSERT_TRUE(active.ok()) << active.error().to_string();
  EXPECT_EQ((*active)["state"], "active");
  EXPECT_EQ((*active)["effective_weight"], 1);
  EXPECT_GT((*active)["slots"].get<uint32_t>(), 0u);
  const auto* b =
      fake_.snapshot().vips.at(key("198.18.200.1:80/tcp")).find_backend(ip("198.18.3.12"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->weight, 1u);
  EXPECT_EQ(b->state, BackendState::kActive);

  EXPECT_HTTP_ERROR(api().patch(path, json::object()), 400, "nothing to change");
  EXPECT_HTTP_ERROR(api().patch(path, {{"state", "asleep"}}), 400, "'state'");
  EXPECT_HTTP_ERROR(api().patch(path, {{"address", "198.18.3.99"}}), 400, "'address'");
  EXPECT_HTTP_ERROR(api().patch(std::string(kWeb) + "/backends/198.18.3.99", {{"weight", 1}}), 404,
                    "no backend");
  EXPECT_HTTP_ERROR(api().patch(std::string(kWeb) + "/backends/not-an-ip", {{"weight", 1}}), 400,
                    "backend address");
}

TEST_F(ApiTest, DeleteBackend) {
  const std::string path = std::string(kDns) + "/backends/2001:db8:3::11";
  auto deleted = api().del(path);
  ASSERT_TRUE(deleted.ok()) << deleted.error().to_string();
  EXPECT_EQ((*deleted)["deleted"], "2001:db8:3::11");
  EXPECT_TRUE(fake_.snapshot().vips.at(key("[2001:db8:200::1]:443/udp")).backends.empty());
  EXPECT_HTTP_ERROR(api().del(path), 404, "no backend");
  EXPECT_HTTP_ERROR(api().del("/v1/vips/198.18.200.9:80%2Ftcp/backends/198.18.3.11"), 404,
                    "no VIP");
}

// ---- Failures inside the control plane
// -----------------------------------------------------------

TEST_F(ApiTest, FailedMutationsLeaveTheStateUnchanged) {
  fake_.fail_next_mutation(Error::from_errno(ENOSPC, "reconcile: put_backend index 7"));
  EXPECT_HTTP_ERROR(api().post(std::string(kWeb) + "/backends", {{"address", "198.18.3.13"}}), 500,
                    "put_backend index 7");
  EXPECT_EQ(fake_.snapshot(), initial_state());
  auto list = api().get(std::string(kWeb) + "/backends");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);

  fake_.fail_next_mutation(Error::from_errno(EIO, "reconcile: set_ring"));
  EXPECT_HTTP_ERROR(api().del(kWeb), 500, "set_ring");
  EXPECT_EQ(fake_.snapshot(), initial_state());
  EXPECT_TRUE(api().get(kWeb).ok());

  fake_.fail_next_mutation(Error::from_errno(EIO, "reconcile: put_vip"));
  EXPECT_HTTP_ERROR(api().post("/v1/vips", {{"vip", "198.18.200.7:80/tcp"}}), 500, "put_vip");
  EXPECT_HTTP_ERROR(api().get("/v1/vips/198.18.200.7:80%2Ftcp"), 404, "no VIP");
  EXPECT_EQ(fake_.snapshot(), initial_state());

  // The failure was one-shot: the same change goes through now.
  auto patched = api().patch(std::string(kWeb) + "/backends/198.18.3.11", {{"weight", 0}});
  ASSERT_TRUE(patched.ok()) << patched.error().to_string();
  EXPECT_EQ((*patched)["slots"], 0);
}

TEST_F(ApiTest, ReadFailuresAre500) {
  fake_.fail_reads(Error::from_errno(EBADF, "reading vip_stats"));
  EXPECT_HTTP_ERROR(api().get("/v1/vips"), 500, "vip_stats");
  EXPECT_HTTP_ERROR(api().get("/v1/stats"), 500, "vip_stats");
  EXPECT_HTTP_ERROR(api().get("/v1/status"), 500, "vip_stats");
  fake_.fail_reads(std::nullopt);
  EXPECT_TRUE(api().get("/v1/vips").ok());
}

// ---- Stats, plan, lookup, health -------------------------------------------------------------

TEST_F(ApiTest, Stats) {
  auto stats = api().get("/v1/stats");
  ASSERT_TRUE(stats.ok()) << stats.error().to_string();
  ASSERT_EQ((*stats)["vips"].size(), 2u);
  const json& counters = (*stats)["counters"];
  int expected = 0;
#define XLB_TEST_COUNTER(name, metric, help)                        \
  EXPECT_EQ(counters[metric], 10 * (XLB_CNT_##name + 1)) << metric; \
  ++expected;
  XLB_COUNTERS(XLB_TEST_COUNTER)
#undef XLB_TEST_COUNTER
  EXPECT_EQ(counters.size(), static_cast<size_t>(expected));

  auto web = api().get("/v1/stats?vip=198.18.200.1:80/tcp");
  ASSERT_TRUE(web.ok()) << web.error().to_string();
  ASSERT_EQ((*web)["vips"].size(), 1u);
  const json& v = (*web)["vips"][0];
  EXPECT_EQ(v["packets"], 3010);
  const json& b = find_backend(v["backends"], "198.18.3.12");
  EXPECT_EQ(b["packets"], 2000);
  EXPECT_EQ(b["bytes"], 200000);
  EXPECT_NEAR(b["share"].get<double>(), 2000.0 / 3010.0, 1e-9);
  // Encoded query values work as well.
  auto dns = api().get("/v1/stats?vip=" + encode_component("[2001:db8:200::1]:443/udp"));
  ASSERT_TRUE(dns.ok()) << dns.error().to_string();
  EXPECT_EQ((*dns)["vips"][0]["name"], "dns");

  EXPECT_HTTP_ERROR(api().get("/v1/stats?vip=198.18.200.9:80/tcp"), 404, "no VIP");
  EXPECT_HTTP_ERROR(api().get("/v1/stats?vip=bogus"), 400, "'vip'");
  EXPECT_HTTP_ERROR(api().get("/v1/stats?vips=198.18.200.1:80/tcp"), 400, "'vips'");
}

TEST_F(ApiTest, PlanChangesNothing) {
  auto removed =
      api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"}, {"remove", "198.18.3.11"}});
  ASSERT_TRUE(removed.ok()) << removed.error().to_string();
  const json& gone = find_backend((*removed)["backends"], "198.18.3.11");
  EXPECT_GT(gone["slots_before"].get<uint32_t>(), 0u);
  EXPECT_EQ(gone["slots_after"], 0);
  EXPECT_EQ(gone["slots_lost"], gone["slots_before"]);
  const json& kept = find_backend((*removed)["backends"], "198.18.3.12");
  EXPECT_EQ(kept["slots_after"], (*removed)["ring_size"]);
  EXPECT_NEAR((*removed)["moved_fraction"].get<double>(), 0.25, 0.01);

  auto added = api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"},
                                       {"add", {{"address", "198.18.3.13"}, {"weight", 4}}}});
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  const json& fresh = find_backend((*added)["backends"], "198.18.3.13");
  EXPECT_EQ(fresh["slots_before"], 0);
  EXPECT_EQ(fresh["slots_gained"], fresh["slots_after"]);
  // The newcomer takes half the ring; Maglev moves a little more than that, never less.
  EXPECT_GE((*added)["moved_fraction"].get<double>(), 0.49);
  EXPECT_LE((*added)["moved_fraction"].get<double>(), 0.6);

  auto reweighed = api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"},
                                           {"set", {{"address", "198.18.3.12"}, {"weight", 1}}}});
  ASSERT_TRUE(reweighed.ok()) << reweighed.error().to_string();
  EXPECT_GT((*reweighed)["slots_changed"].get<uint32_t>(), 0u);

  EXPECT_HTTP_ERROR(
      api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"}, {"remove", "198.18.3.99"}}), 404,
      "no backend");
  EXPECT_HTTP_ERROR(api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"},
                                            {"add", {{"address", "198.18.3.11"}}}}),
                    409, "already");
  EXPECT_HTTP_ERROR(api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"}}), 400, "nothing");
  EXPECT_HTTP_ERROR(
      api().post("/v1/plan", {{"vip", "198.18.200.9:80/tcp"}, {"remove", "198.18.3.11"}}), 404,
      "no VIP");
  EXPECT_HTTP_ERROR(api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"},
                                            {"set", {{"address", "198.18.3.11"}}}}),
                    400, "'set'");
  EXPECT_HTTP_ERROR(api().post("/v1/plan", {{"vip", "198.18.200.1:80/tcp"}, {"drop", "x"}}), 400,
                    "'drop'");
  EXPECT_EQ(fake_.snapshot(), initial_state());
}

TEST_F(ApiTest, Lookup) {
  const std::string path = "/v1/lookup?vip=198.18.200.1:80/tcp&from=198.18.1.2:40000";
  auto first = api().get(path);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  const std::string backend = (*first)["backend"];
  EXPECT_TRUE(backend == "198.18.3.11" || backend == "198.18.3.12") << backend;
  EXPECT_EQ((*first)["from_table"], false);
  EXPECT_EQ((*first)["from"], "198.18.1.2:40000");
  EXPECT_TRUE((*first)["backend_index"].is_number());
  auto again = api().get(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);

  auto v6 = api().get("/v1/lookup?vip=" + encode_component("[2001:db8:200::1]:443/udp") +
                      "&from=" + encode_component("[2001:db8:1::2]:5353"));
  ASSERT_TRUE(v6.ok()) << v6.error().to_string();
  EXPECT_EQ((*v6)["backend"], "2001:db8:3::11");

  EXPECT_HTTP_ERROR(api().get("/v1/lookup?vip=198.18.200.1:80/tcp"), 400, "'from'");
  EXPECT_HTTP_ERROR(api().get("/v1/lookup?vip=198.18.200.1:80/tcp&from=198.18.1.2"), 400, "'from'");
  EXPECT_HTTP_ERROR(api().get("/v1/lookup?vip=198.18.200.1:80/tcp&from=" +
                              encode_component("[2001:db8:1::2]:5353")),
                    400, "family");
  EXPECT_HTTP_ERROR(api().get("/v1/lookup?vip=198.18.200.9:80/tcp&from=198.18.1.2:1"), 404,
                    "no VIP");
  EXPECT_HTTP_ERROR(api().get(path + "&vip=198.18.200.1:80/tcp"), 400, "twice");

  // A port-less VIP answers for every port; asked without one, the flow is incomplete.
  ASSERT_TRUE(api().post("/v1/vips", {{"vip", "198.18.200.2/tcp"}}).ok());
  ASSERT_TRUE(api().post("/v1/vips/198.18.200.2%2Ftcp/backends", {{"address", "198.18.3.21"}}).ok());
  auto any = api().get("/v1/lookup?vip=198.18.200.2:443/tcp&from=198.18.1.2:40000");
  ASSERT_TRUE(any.ok()) << any.error().to_string();
  EXPECT_EQ((*any)["backend"], "198.18.3.21");
  EXPECT_EQ((*any)["vip"], "198.18.200.2:443/tcp");
  EXPECT_HTTP_ERROR(api().get("/v1/lookup?vip=198.18.200.2/tcp&from=198.18.1.2:40000"), 400,
                    "ask with the destination port");
  EXPECT_HTTP_ERROR(api().get("/v1/lookup?vip=198.18.200.3:443/tcp&from=198.18.1.2:1"), 404,
                    "no VIP");
}

TEST_F(ApiTest, HealthShowsStatesAndChecks) {
  ASSERT_TRUE(
      api().patch(std::string(kWeb) + "/backends/198.18.3.11", {{"state", "disabled"}}).ok());
  auto health = api().get("/v1/health");
  ASSERT_TRUE(health.ok()) << health.error().to_string();
  ASSERT_EQ((*health)["vips"].size(), 2u);
  bool seen = false;
  for (const auto& v : (*health)["vips"]) {
    if (v["vip"] != "198.18.200.1:80/tcp") continue;
    EXPECT_EQ(v["check"], "none");
    EXPECT_EQ(v["all_down"], "keep-last-set");
    EXPECT_EQ(find_backend(v["backends"], "198.18.3.11")["state"], "disabled");
    const auto& active = find_backend(v["backends"], "198.18.3.12");
    EXPECT_EQ(active["state"], "active");
    EXPECT_EQ(active["health"], "unchecked");
    EXPECT_EQ(active["up"], true);
    EXPECT_EQ(active["weight_factor"], 1.0);
    seen = true;
  }
  EXPECT_TRUE(seen);
}

TEST_F(ApiTest, UnknownRoutesAndMethods) {
  EXPECT_HTTP_ERROR(api().get("/v1/nothing"), 404, "no such resource");
  EXPECT_HTTP_ERROR(api().get("/v2/vips"), 404, "no such resource");
  EXPECT_HTTP_ERROR(api().get("/v1/vips/"), 404, "no such resource");
  EXPECT_HTTP_ERROR(api().del("/v1/vips"), 405, "GET, POST");
  EXPECT_HTTP_ERROR(api().patch("/v1/status", json::object()), 405, "GET");
  EXPECT_HTTP_ERROR(api().post(kWeb, json::object()), 405, "DELETE, GET");
  EXPECT_HTTP_ERROR(api().get("/v1/status?verbose=1"), 400, "'verbose'");
}

TEST_F(ApiTest, ConcurrentMutationsAllLand) {
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        std::string address = "198.18.3." + std::to_string(100 + t * 4 + i);
        auto r = api().post(std::string(kWeb) + "/backends", {{"address", address}});
        if (!r.ok()) {
          ++failures[t];
          ADD_FAILURE() << address << ": " << r.error().to_string();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
  EXPECT_EQ(fake_.snapshot().vips.at(key("198.18.200.1:80/tcp")).backends.size(), 2u + 32u);
}


// ---- POST /v1/events (discovery push) ------------------------------------------------------

TEST_F(ApiTest, PushWithoutDiscoveryIsAConflict) {
  EXPECT_HTTP_ERROR(api().post("/v1/events", {{"events", json::array()}}), 409,
                    "discovery is not configured");
  EXPECT_EQ(fake_.pushed_bodies().size(), 1u);
}

TEST_F(ApiTest, PushAcceptedIs202AndForwardsTheBodyUnchanged) {
  fake_.set_push_reply(state::PushView{.source = "hooks", .replace = false, .accepted = 2,
                                       .rejected = {}});
  json body = {{"source", "hooks"},
               {"events",
                {{{"kind", "upsert_backend"},
                  {"vip", "198.18.200.1:80/tcp"},
                  {"backend", {{"address", "198.18.3.21"}, {"weight", 2}}}},
                 {{"kind", "remove_vip"}, {"vip", "198.18.200.9:80/tcp"}}}}};
  auto r = api().post("/v1/events", body);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ((*r)["source"], "hooks");
  EXPECT_EQ((*r)["accepted"], 2);
  EXPECT_EQ((*r)["rejected"], json::array());
  ASSERT_EQ(fake_.pushed_bodies().size(), 1u);
  EXPECT_EQ(json::parse(fake_.pushed_bodies()[0]), body);
}

TEST_F(ApiTest, PushWithRejectionsIs400NamingEachBadEvent) {
  fake_.set_push_reply(state::PushView{
      .source = "hooks",
      .replace = false,
      .accepted = 0,
      .rejected = {{1, "bad_address", "events[1].backend.address: 'x' is not an address"},
                   {2, "bad_weight", "events[2].backend.weight: 70000 is over 65535"}}});
  EXPECT_HTTP_ERROR(api().post("/v1/events", {{"events", json::array()}}), 400,
                    "2 event(s) rejected, none of the body was applied: events[1]: bad_address");
  EXPECT_HTTP_ERROR(api().post("/v1/events", {{"events", json::array()}}), 400,
                    "events[2]: bad_weight: events[2].backend.weight: 70000");
}

TEST_F(ApiTest, PushBodyLevelErrorsAre400) {
  fake_.set_push_reply(Error::invalid("unknown_source: push: source: 'x' is not a push source"));
  EXPECT_HTTP_ERROR(api().post("/v1/events", {{"source", "x"}, {"events", json::array()}}), 400,
                    "unknown_source");
}

TEST_F(ApiTest, ChangingADiscoveredEntryIsAConflictNamingItsSource) {
  state::DesiredState found;
  VipSpec registry;
  registry.key = key("198.18.200.2:80/tcp");
  registry.backends = {BackendSpec{.address = ip("198.18.3.21")}};
  found.vips.emplace(registry.key, registry);
  VipSpec web;  // a discovered backend of a configured VIP
  web.key = key("198.18.200.1:80/tcp");
  web.backends = {BackendSpec{.address = ip("198.18.3.31")}};
  found.vips.emplace(web.key, web);
  fake_.set_discovered(found);

  const std::string reg = "/v1/vips/198.18.200.2:80%2Ftcp";
  EXPECT_HTTP_ERROR(api().patch(reg + "/backends/198.18.3.21", {{"state", "draining"}}), 409,
                    "backend 198.18.3.21 of VIP 198.18.200.2:80/tcp comes from service discovery");
  EXPECT_HTTP_ERROR(api().del(reg), 409, "change it at its source");
  EXPECT_HTTP_ERROR(api().post(reg + "/backends", {{"address", "198.18.3.22"}}), 409,
                    "VIP 198.18.200.2:80/tcp comes from service discovery");
  EXPECT_HTTP_ERROR(api().del(std::string(kWeb) + "/backends/198.18.3.31"), 409,
                    "comes from service discovery");
  // Entries nobody has stay plain 404s; configured ones change as before.
  EXPECT_HTTP_ERROR(api().del(std::string(kWeb) + "/backends/198.18.3.99"), 404, "has no backend");
  EXPECT_HTTP_ERROR(api().del("/v1/vips/198.18.200.9:80%2Ftcp"), 404, "no VIP");
  EXPECT_TRUE(api().patch(std::string(kWeb) + "/backends/198.18.3.11", {{"weight", 4}}).ok());
}

TEST_F(ApiTest, StatusShowsDiscoverySources) {
  auto s = api().get("/v1/status");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)["discovery"].is_null());
  state::DiscoveryView d;
  d.debounce_ms = 50;
  d.generation = 7;
  d.discovered_backends = 3;
  d.sources.push_back({.name = "registry",
                       .type = "etcd",
                       .priority = 100,
                       .state = "stale",
                       .detail = "http://127.0.0.1:2379: connection refused",
                       .revision = 42,
                       .last_good_unix = 1.8e9,
                       .events_applied = 9,
                       .events_rejected = 1,
                       .rejected_by_reason = {{"bad_weight", 1}},
                       .last_rejection = "weight",
                       .stale_total = 1});
  fake_.set_discovery(d);
  s = api().get("/v1/status");
  ASSERT_TRUE(s.ok());
  const json& disc = (*s)["discovery"];
  EXPECT_EQ(disc["generation"], 7);
  EXPECT_EQ(disc["discovered_backends"], 3);
  ASSERT_EQ(disc["sources"].size(), 1u);
  EXPECT_EQ(disc["sources"][0]["state"], "stale");
  EXPECT_EQ(disc["sources"][0]["revision"], 42);
  EXPECT_EQ(disc["sources"][0]["rejected_by_reason"]["bad_weight"], 1);
}

}  // namespace
}  // namespace xlb::api
