// SPDX-License-Identifier: Apache-2.0
// Discovery against a real etcd (Debian's etcd-server 3.4), started by each test on 127.0.0.1
// with free ports and a temporary data directory, and killed by PID (also if the test dies).
// Keys are written with etcdctl, a client independent of the module's own.
//
//   puts and deletes are followed; malformed values never clear anything
//   etcd killed: entries kept, source stale; etcd back: watch resumed from the last revision
//   changes made while the source was cut off are caught up on reconnect
//   compaction past the watched revision: a full read replaces the source's content
//   user/password authentication and https with a CA
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "xlb/discovery/discovery.h"
#include "xlb/discovery/testing/collector.h"
#include "xlb/discovery/etcd_keys.h"
#include "xlb/discovery/testing/etcd_server.h"

namespace xlb::discovery {
namespace {

using namespace std::chrono_literals;
using testing::EtcdServer;
using testing::EtcdServerOptions;

const std::string kPrefix = "/xlb/e2e";
const char* kVip = "198.18.200.1:80/tcp";

state::VipKey vip(const char* text) { return *state::VipKey::parse(text); }
IpAddress ip(const char* text) { return *IpAddress::parse(text); }

std::string backend_key(const char* address, const char* v = kVip) {
  return etcd_backend_key(kPrefix, vip(v), ip(address));
}
std::string spec_key(const char* v = kVip) { return etcd_spec_key(kPrefix, vip(v)); }

using testing::Collector;

// The backends of kVip as "address=weight" in address order, "" when the VIP is absent.
std::string members(const Snapshot& s, const char* v = kVip) {
  auto it = s.vips.find(vip(v));
  if (it == s.vips.end()) return "";
  std::string out;
  for (const auto& b : it->second.backends) {
    out +=
        (out.empty() ? "" : " ") + b.spec.address.to_string() + "=" + std::to_string(b.spec.weight);
  }
  return out;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class DiscoveryEtcd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdServer::available()) GTEST_SKIP() << "etcd/etcdctl not installed";
  }

  void start_etcd(EtcdServerOptions options = {}) {
    auto s = EtcdServer::start(std::move(options));
    ASSERT_TRUE(s.ok()) << s.error().message;
    etcd_ = std::move(*s);
  }

  SourceConfig etcd_source(const std::string& endpoint) {
    SourceConfig s{.name = "registry", .type = SourceType::kEtcd, .priority = 100};
    s.etcd.endpoints = {endpoint};
    s.etcd.prefix = kPrefix;
    s.etcd.backoff_max_ms = 500;  // quick recovery checks; production default 5 s
    s.etcd.dial_timeout_ms = 500;
    return s;
  }

  void start_discovery(SourceConfig source) {
    auto d = Discovery::start(DiscoveryConfig{.debounce_ms = 50, .sources = {std::move(source)}},
                              collector_.fn());
    ASSERT_TRUE(d.ok()) << d.error().message;
    discovery_ = std::move(*d);
  }

  SourceStatus status() {
    for (const auto& s : discovery_->sources()) {
      if (s.name == "registry") return s;
    }
    ADD_FAILURE() << "no source 'registry'";
    return {};
  }

  // etcdctl put; returns the revision of the write.
  int64_t put(const std::string& key, const std::string& value) {
    auto out = etcd_->etcdctl({"put", key, value, "-w", "json"});
    EXPECT_TRUE(out.ok()) << out.error().message;
    if (!out) return 0;
    auto j = nlohmann::json::parse(*out, nullptr, false);
    return j.is_discarded() ? 0 : j["header"]["revision"].get<int64_t>();
  }
  void del(const std::string& key) {
    auto out = etcd_->etcdctl({"del", key});
    EXPECT_TRUE(out.ok()) << out.error().message;
  }

  void TearDown() override {
    if (discovery_) discovery_->stop();
    discovery_.reset();
    etcd_.reset();  // kills etcd by PID, removes its data directory
  }

  std::unique_ptr<EtcdServer> etcd_;
  std::unique_ptr<Discovery> discovery_;
  Collector collector_;
};

TEST_F(DiscoveryEtcd, FollowsPutsAndDeletes) {
  start_etcd();
  // Present before the source starts: the initial read.
  put(spec_key(), R"({"name": "web", "hash": "src"})");
  put(backend_key("198.18.3.11"), R"({"weight": 2, "state": "active", "metadata": {"az": "a"}})");
  put(backend_key("198.18.3.12"), R"({"address": "198.18.3.12"})");
  start_discovery(etcd_source(etcd_->endpoint()));
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=2 198.18.3.12=1"; }));
  {
    const Snapshot snap = collector_.last();
    const auto& v = snap.vips.at(vip(kVip));
    ASSERT_TRUE(v.spec);
    EXPECT_EQ(v.spec->name, "web");
    EXPECT_EQ(v.spec->hash, state::HashMode::kSourceOnly);
    EXPECT_EQ(v.backends[0].metadata, R"({"az":"a"})");
    EXPECT_EQ(v.backends[0].owner, "registry");
  }
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kConnected; }));
  EXPECT_EQ(status().full_resyncs_total, 1u);

  // Watch: add, reweigh, drain, remove; an IPv6 VIP.
  put(backend_key("198.18.3.13"), "{}");
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=2 198.18.3.12=1 198.18.3.13=1"; }));
  put(backend_key("198.18.3.12"), R"({"weight": 5})");
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=2 198.18.3.12=5 198.18.3.13=1"; }));
  put(backend_key("198.18.3.13"), R"({"state": "draining"})");
  ASSERT_TRUE(collector_.wait([](const Snapshot& s) {
    auto it = s.vips.find(vip(kVip));
    return it != s.vips.end() && it->second.backends.size() == 3 &&
           it->second.backends[2].spec.state == state::BackendState::kDraining;
  }));
  del(backend_key("198.18.3.11"));
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.12=5 198.18.3.13=1"; }));
  const char* v6 = "[2001:db8:200::1]:443/tcp";
  put(backend_key("2001:db8:3::11", v6), R"({"weight": 3})");
  ASSERT_TRUE(
      collector_.wait([&](const Snapshot& s) { return members(s, v6) == "2001:db8:3::11=3"; }));

  // Malformed values and keys are rejected, counted, and never clear anything: the key keeps
  // its last good value.
  const uint64_t before = status().events_rejected;
  put(backend_key("198.18.3.12"), R"({"weight": "heavy"})");
  put(backend_key("198.18.3.13"), "not json");
  put(kPrefix + "/vips/" + kVip + "/backend/198.18.3.14", "{}");
  put(spec_key(), R"({"ring_size": 1000})");
  put(kPrefix + "/other/stuff", "ignored: outside PREFIX/vips/");
  ASSERT_TRUE(eventually([&] { return status().events_rejected == before + 4; }))
      << status().events_rejected;
  EXPECT_TRUE(discovery_->wait_idle(2s));
  EXPECT_EQ(members(collector_.last()), "198.18.3.12=5 198.18.3.13=1");
  EXPECT_EQ(collector_.last().vips.at(vip(kVip)).spec->name, "web");
  const auto st = status();
  EXPECT_EQ(st.rejected_by_reason[static_cast<size_t>(Reject::kWrongType)], 1u);
  EXPECT_EQ(st.rejected_by_reason[static_cast<size_t>(Reject::kSyntax)], 1u);
  EXPECT_EQ(st.rejected_by_reason[static_cast<size_t>(Reject::kBadKey)], 1u);
  EXPECT_EQ(st.rejected_by_reason[static_cast<size_t>(Reject::kBadRingSize)], 1u);
  // A delete of a key whose latest value was bad removes its last good entry.
  del(backend_key("198.18.3.13"));
  ASSERT_TRUE(collector_.wait([](const Snapshot& s) { return members(s) == "198.18.3.12=5"; }));

  // The settings key goes: the VIP stays (its backends still exist) with default settings;
  // its last backend goes: the VIP goes.
  del(spec_key());
  ASSERT_TRUE(collector_.wait([](const Snapshot& s) {
    auto it = s.vips.find(vip(kVip));
    return it != s.vips.end() && !it->second.spec && it->second.backends.size() == 1;
  }));
  del(backend_key("198.18.3.12"));
  ASSERT_TRUE(collector_.wait([](const Snapshot& s) { return !s.vips.contains(vip(kVip)); }));
  EXPECT_GT(status().revision.value_or(0), 0);
}

TEST_F(DiscoveryEtcd, EtcdDownKeepsStateStaleThenResyncsOnRestart) {
  start_etcd();
  put(backend_key("198.18.3.11"), "{}");
  put(backend_key("198.18.3.12"), "{}");
  start_discovery(etcd_source(etcd_->endpoint()));
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=1 198.18.3.12=1"; }));
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kConnected; }));
  const int updates = collector_.updates();

  etcd_->kill();
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kStale; }, 5s))
      << "state " << to_string(status().state);
  EXPECT_EQ(status().stale_total, 1u);
  EXPECT_NE(status().detail.find("127.0.0.1"), std::string::npos) << status().detail;
  // Serving goes on with the last good state: no update, nothing removed.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(status().state, SourceState::kStale);
  EXPECT_EQ(collector_.updates(), updates);
  EXPECT_EQ(members(*discovery_->applied()), "198.18.3.11=1 198.18.3.12=1");

  ASSERT_TRUE(etcd_->restart().ok());
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kConnected; }, 10s));
  // Resumed from the last revision, not read again.
  EXPECT_EQ(status().full_resyncs_total, 1u);
  EXPECT_GE(status().resyncs_total, 1u);
  EXPECT_EQ(status().reconnects_total, 1u);
  put(backend_key("198.18.3.13"), R"({"weight": 4})");
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=1 198.18.3.12=1 198.18.3.13=4"; }));
}

TEST_F(DiscoveryEtcd, ChangesWhileCutOffAreCaughtUpFromTheRevision) {
  start_etcd();
  put(backend_key("198.18.3.11"), "{}");
  put(backend_key("198.18.3.12"), "{}");
  const uint16_t source_port = etcd_->client_port();
  start_discovery(etcd_source(etcd_->endpoint()));
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=1 198.18.3.12=1"; }));
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kConnected; }));

  // Cut the source off: etcd moves to a port the source does not know, and changes there.
  auto other = EtcdServer::free_port();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(etcd_->restart(*other).ok());
  del(backend_key("198.18.3.11"));
  put(backend_key("198.18.3.12"), R"({"weight": 7})");
  put(backend_key("198.18.3.13"), "{}");
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kStale; }));
  EXPECT_EQ(members(*discovery_->applied()), "198.18.3.11=1 198.18.3.12=1");

  ASSERT_TRUE(etcd_->restart(source_port).ok());
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.12=7 198.18.3.13=1"; }));
  EXPECT_EQ(status().full_resyncs_total, 1u);  // the watch replayed the missed events
  EXPECT_GE(status().resyncs_total, 1u);
}

TEST_F(DiscoveryEtcd, CompactionPastTheWatchedRevisionForcesAFullRead) {
  start_etcd();
  put(spec_key(), R"({"name": "web"})");
  put(backend_key("198.18.3.11"), "{}");
  put(backend_key("198.18.3.12"), "{}");
  const uint16_t source_port = etcd_->client_port();
  start_discovery(etcd_source(etcd_->endpoint()));
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=1 198.18.3.12=1"; }));
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kConnected; }));
  const int64_t watched = status().revision.value_or(0);

  // While the source is cut off: a delete, a new backend, many revisions, then compaction past
  // everything the source has seen.
  auto other = EtcdServer::free_port();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(etcd_->restart(*other).ok());
  del(backend_key("198.18.3.11"));
  int64_t rev = 0;
  for (int i = 0; i < 20; i++) {
    rev = put(backend_key("198.18.3.13"), "{\"weight\": " + std::to_string(i + 1) + "}");
  }
  ASSERT_GT(rev, watched + 20);
  auto compacted = etcd_->etcdctl({"compact", std::to_string(rev), "--physical"});
  ASSERT_TRUE(compacted.ok()) << compacted.error().message;
  auto defrag = etcd_->etcdctl({"defrag"});
  ASSERT_TRUE(defrag.ok()) << defrag.error().message;

  ASSERT_TRUE(etcd_->restart(source_port).ok());
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.12=1 198.18.3.13=20"; }));
  EXPECT_EQ(status().full_resyncs_total, 2u);
  EXPECT_GE(status().revision.value_or(0), rev);
  EXPECT_EQ(collector_.last().vips.at(vip(kVip)).spec->name, "web");
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kConnected; }));
  // And it keeps following.
  put(backend_key("198.18.3.14"), "{}");
  ASSERT_TRUE(collector_.wait([](const Snapshot& s) {
    return members(s) == "198.18.3.12=1 198.18.3.13=20 198.18.3.14=1";
  }));
}

TEST_F(DiscoveryEtcd, UserAndPassword) {
  start_etcd();
  ASSERT_TRUE(etcd_->etcdctl({"user", "add", "root", "--new-user-password=xlb-test-pw"}).ok());
  ASSERT_TRUE(etcd_->etcdctl({"auth", "enable"}).ok());
  ASSERT_TRUE(
      etcd_->etcdctl({"--user=root:xlb-test-pw", "put", backend_key("198.18.3.11"), "{}"}).ok());
  const std::string pw_file = etcd_->temp_dir() + "/password";
  {
    std::ofstream out(pw_file);
    out << "wrong\n";
  }
  SourceConfig source = etcd_source(etcd_->endpoint());
  source.etcd.username = "root";
  source.etcd.password_file = pw_file;
  start_discovery(source);
  // A wrong password: the source is in error, not stale (reached, but refused).
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kError; }))
      << to_string(status().state) << " " << status().detail;
  {
    std::ofstream out(pw_file);
    out << "xlb-test-pw\n";
  }
  // The password file is read on every connection: fixing it is enough.
  ASSERT_TRUE(collector_.wait([](const Snapshot& s) { return members(s) == "198.18.3.11=1"; }));
  ASSERT_TRUE(
      etcd_->etcdctl({"--user=root:xlb-test-pw", "put", backend_key("198.18.3.12"), "{}"}).ok());
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=1 198.18.3.12=1"; }));
}

TEST_F(DiscoveryEtcd, HttpsWithACertificateAuthority) {
  if (::access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl not installed";
  // A self-signed certificate for 127.0.0.1 in a temporary directory (removed however the
  // test ends).
  struct TempDir {
    std::string path;
    ~TempDir() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
  } tmp;
  std::string tmpl = "/tmp/xlb-tls-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  tmp.path = tmpl;
  const std::string& dir = tmp.path;
  const std::string cmd =
      "/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
      "subjectAltName=IP:127.0.0.1 -keyout " +
      dir + "/key.pem -out " + dir + "/cert.pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string other =
      "/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
      "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      dir + "/other-key.pem -out " + dir + "/other.pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(other.c_str()), 0);
  start_etcd(EtcdServerOptions{.cert_file = dir + "/cert.pem", .key_file = dir + "/key.pem"});
  put(backend_key("198.18.3.11"), "{}");
  ASSERT_EQ(etcd_->endpoint().rfind("https://", 0), 0u);

  // A CA that did not sign the server's certificate: error (a setup problem), not stale.
  SourceConfig untrusted = etcd_source(etcd_->endpoint());
  untrusted.etcd.ca_file = dir + "/other.pem";
  start_discovery(untrusted);
  ASSERT_TRUE(eventually([&] { return status().state == SourceState::kError; }))
      << to_string(status().state) << " " << status().detail;
  EXPECT_NE(status().detail.find("certificate"), std::string::npos) << status().detail;
  EXPECT_TRUE(discovery_->applied()->vips.empty());
  discovery_->stop();
  discovery_.reset();

  SourceConfig source = etcd_source(etcd_->endpoint());
  source.etcd.ca_file = dir + "/cert.pem";
  start_discovery(source);
  ASSERT_TRUE(collector_.wait([](const Snapshot& s) { return members(s) == "198.18.3.11=1"; }));
  put(backend_key("198.18.3.12"), "{}");
  ASSERT_TRUE(collector_.wait(
      [](const Snapshot& s) { return members(s) == "198.18.3.11=1 198.18.3.12=1"; }));
  discovery_->stop();
  discovery_.reset();
  etcd_.reset();
}

}  // namespace
}  // namespace xlb::discovery
