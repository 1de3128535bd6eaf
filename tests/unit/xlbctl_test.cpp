// SPDX-License-Identifier: Apache-2.0
// xlbctl without a daemon: argument parsing, VIP/backend syntax, every command's request (method,
// path, body) against a recording fake API, exit codes, tables, rates and the bash completion's
// lists. tests/e2e/xlbctl_test.py runs the real binary against a real xlbd.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "xlb/api/client.h"
#include "xlbctl/args.h"
#include "xlbctl/commands.h"
#include "xlbctl/render.h"
#include "xlbctl/stats.h"
#include "xlbctl/syntax.h"
#include "xlbctl/table.h"

namespace xlbctl {
namespace {

using xlb::Error;
using xlb::Result;

// ---- a fake xlbd --------------------------------------------------------------------------

struct Request {
  std::string method;
  std::string path;
  Json body;
};

class FakeApi : public Api {
 public:
  Result<Json> get(const std::string& path) override { return answer_for({"GET", path, {}}); }
  Result<Json> post(const std::string& path, const Json& body) override {
    return answer_for({"POST", path, body});
  }
  Result<Json> patch(const std::string& path, const Json& body) override {
    return answer_for({"PATCH", path, body});
  }
  Result<Json> del(const std::string& path) override { return answer_for({"DELETE", path, {}}); }
  std::string describe() const override { return "unix:/fake.sock"; }

  std::vector<Request> requests;
  // Answers in order; when they run out, every request gets `fallback`.
  std::vector<Result<Json>> answers;
  Json fallback = Json::object();

 private:
  Result<Json> answer_for(Request r) {
    requests.push_back(std::move(r));
    if (next_ < answers.size()) return answers[next_++];
    return fallback;
  }
  size_t next_ = 0;
};

Error http(int status, std::string message) {
  return Error{std::error_code(status, xlb::api::http_category()), std::move(message)};
}

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

// xlbctl's main() minus gflags: the global flags are split off the same way (json and socket
// stand for the real set), then the command runs with a clock that only sleeps moves.
class Cli {
 public:
  Outcome run(std::vector<std::string> words) {
    auto lookup = [](std::string_view name) -> std::optional<bool> {
      if (name == "json") return true;
      if (name == "socket") return false;
      return std::nullopt;
    };
    std::ostringstream out, err;
    auto split = split_global_flags(words, lookup);
    if (!split) return {kExitUsage, "", split.error().message};
    Options options;
    for (const auto& [name, value] : split->globals) {
      if (name == "json") options.json = value == "true";
    }
    Env env{.out = out,
            .err = err,
            .sleep =
                [this](std::chrono::milliseconds d) {
                  sleeps.push_back(d);
                  clock += d;
                },
            .now = [this] { return std::chrono::steady_clock::time_point(clock); },
            .interrupted = [] { return false; }};
    int code = xlbctl::run(split->rest, split->help, options, api, env);
    return {code, out.str(), err.str()};
  }

  FakeApi api;
  std::vector<std::chrono::milliseconds> sleeps;
  std::chrono::steady_clock::duration clock{std::chrono::seconds(100)};
};

// ---- parse_args / split_global_flags ------------------------------------------------------

const std::vector<FlagSpec> kFlags = {
    {"weight", "N", ""}, {"drain", "", ""}, {"ring-size", "N", ""}};

std::vector<std::string> w(std::initializer_list<const char*> words) {
  return {words.begin(), words.end()};
}

TEST(ParseArgs, FlagsInEveryFormAndPositionals) {
  auto words = w({"a", "--weight", "3", "b", "--drain", "--ring-size=7"});
  auto p = parse_args(words, kFlags);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->positionals, w({"a", "b"}));
  EXPECT_EQ(p->value("weight"), "3");
  EXPECT_EQ(p->value("ring-size"), "7");
  EXPECT_TRUE(p->has("drain"));
  EXPECT_FALSE(p->value("nope").has_value());
}

TEST(ParseArgs, UnderscoreSpellingAndDoubleDash) {
  auto words = w({"--ring_size", "5", "--", "--drain", "-x"});
  auto p = parse_args(words, kFlags);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->value("ring-size"), "5");
  EXPECT_FALSE(p->has("drain"));
  EXPECT_EQ(p->positionals, w({"--drain", "-x"}));
}

TEST(ParseArgs, RefusesWithUsageErrors) {
  struct Case {
    std::vector<std::string> words;
    std::string message;
  };
  const Case cases[] = {
      {w({"--wieght", "3"}), "unknown flag --wieght (accepted: --weight, --drain, --ring-size)"},
      {w({"--weight", "1", "--weight", "2"}), "--weight given twice"},
      {w({"--weight"}), "--weight needs a value (--weight N)"},
      {w({"--drain=yes"}), "--drain takes no value"},
      {w({"-w", "3"}), "unknown flag '-w': flags are written --NAME"},
  };
  for (const auto& c : cases) {
    auto p = parse_args(c.words, kFlags);
    ASSERT_FALSE(p.ok()) << c.message;
    EXPECT_TRUE(is_usage_error(p.error()));
    EXPECT_NE(p.error().message.find(c.message), std::string::npos) << p.error().message;
  }
  auto none = parse_args(w({"--x"}), {});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("this command takes no flags"), std::string::npos);
}

std::optional<bool> test_globals(std::string_view name) {
  if (name == "json") return true;
  if (name == "socket" || name == "token_file") return false;
  return std::nullopt;
}

TEST(SplitGlobalFlags, AnywhereBeforeDoubleDash) {
  auto words = w(
      {"-j", "vip", "--socket", "/s", "list", "--token-file=/t", "--weight", "3", "--", "--json"});
  auto s = split_global_flags(words, test_globals);
  ASSERT_TRUE(s.ok()) << s.error().message;
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(s->globals, (std::vector<P>{{"json", "true"}, {"socket", "/s"}, {"token_file", "/t"}}));
  EXPECT_EQ(s->rest, w({"vip", "list", "--weight", "3", "--", "--json"}));
  EXPECT_FALSE(s->help);
}

TEST(SplitGlobalFlags, NegationHelpAndMissingValue) {
  auto s = split_global_flags(w({"--nojson", "status", "-h"}), test_globals);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->globals.at(0), (std::pair<std::string, std::string>{"json", "false"}));
  EXPECT_TRUE(s->help);
  EXPECT_EQ(s->rest, w({"status"}));
  auto bad = split_global_flags(w({"status", "--socket"}), test_globals);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(is_usage_error(bad.error()));
  EXPECT_EQ(bad.error().message, "--socket needs a value");
}

// ---- syntax -------------------------------------------------------------------------------

TEST(Syntax, GoodVips) {
  struct Case {
    const char* text;
    const char* canonical;
    uint16_t port;
    bool v6;
  };
  for (const auto& c : {Case{"198.18.200.1:80/tcp", "198.18.200.1:80/tcp", 80, false},
                        Case{"[2001:db8:200::1]:443/udp", "[2001:db8:200::1]:443/udp", 443, true},
                        Case{"198.18.200.2/tcp", "198.18.200.2/tcp", 0, false},
                        Case{"[2001:db8:200::2]/udp", "[2001:db8:200::2]/udp", 0, true},
                        Case{"2001:db8:200::2/tcp", "[2001:db8:200::2]/tcp", 0, true},
                        Case{"198.18.200.1:65535/udp", "198.18.200.1:65535/udp", 65535, false}}) {
    auto key = parse_vip(c.text);
    ASSERT_TRUE(key.ok()) << c.text << ": " << key.error().message;
    EXPECT_EQ(key->to_string(), c.canonical);
    EXPECT_EQ(key->port, c.port);
    EXPECT_EQ(key->address.is_v6(), c.v6);
  }
}

TEST(Syntax, BadVipsSayWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty VIP: want ADDRESS[:PORT]/PROTOCOL"},
      {"198.18.200.1:80", "the protocol is missing: write 198.18.200.1:80/tcp or"},
      {"198.18.200.1", "the protocol is missing"},
      {"198.18.200.1:80/sctp", "protocol 'sctp': want tcp or udp"},
      {"198.18.200.1:80/TCP", "protocol 'TCP': want tcp or udp"},
      {"198.18.200.1:80/", "protocol '': want tcp or udp"},
      {"198.18.200.1:80/tcp/", "protocol '': want tcp or udp"},
      {"198.18.200.1:0/tcp", "port 0; leave the port out for a port-less VIP"},
      {"198.18.200.1:65536/tcp", "port must be 0..65535"},
      {"198.18.200.1:-1/tcp", "port must be 0..65535"},
      {"198.18.200.1:http/tcp", "port must be 0..65535"},
      {"198.18.200.1:/tcp", "port must be 0..65535"},
      {"198.18.200.256:80/tcp", "'198.18.200.256' is not an IPv4 or IPv6 address"},
      {"198.18.200:80/tcp", "'198.18.200' is not an IPv4 or IPv6 address"},
      {"web.example:80/tcp", "'web.example' is not an IPv4 or IPv6 address"},
      {"/tcp", "'' is not an IP address"},
      {"[2001:db8:200::1:443/udp", "unbalanced '['"},
      {"[2001:db8:200::1]443/udp", "unbalanced '['"},
      {"[2001:db8:200::g]:443/udp", "'2001:db8:200::g' is not an IPv4 or IPv6 address"},
      {"[198.18.200.1]:80/tcp", "only IPv6 addresses go in brackets"},
      {" 198.18.200.1:80/tcp", "contains white space"},
      {"198.18.200.1:80 /tcp", "contains white space"},
      {"0.0.0.0:80/tcp", "0.0.0.0 is the unspecified address"},
      {"127.0.0.1:80/tcp", "127.0.0.1 is a loopback address"},
      {"224.0.0.1:80/udp", "224.0.0.1 is a multicast address"},
      {"255.255.255.255:80/udp", "is the broadcast address"},
      {"[::]:80/tcp", ":: is the unspecified address"},
      {"[::1]:80/tcp", "::1 is the loopback address"},
      {"[ff02::1]:80/udp", "ff02::1 is a multicast address"},
  };
  static_assert(std::size(cases) >= 20);
  for (const auto& [text, message] : cases) {
    auto key = parse_vip(text);
    ASSERT_FALSE(key.ok()) << "'" << text << "' was accepted";
    EXPECT_TRUE(is_usage_error(key.error())) << text;
    EXPECT_NE(key.error().message.find(message), std::string::npos)
        << "'" << text << "': got \"" << key.error().message << "\", want \"" << message << "\"";
  }
}

TEST(Syntax, BackendAddresses) {
  EXPECT_EQ(parse_backend_address("198.18.3.11")->to_string(), "198.18.3.11");
  EXPECT_EQ(parse_backend_address("2001:db8:3::11")->to_string(), "2001:db8:3::11");
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty backend address"},
      {"198.18.3.11:80",
       "a backend has no port (xlb forwards to the VIP's port); write 198.18.3.11"},
      {"[2001:db8:3::11]", "without brackets and port"},
      {"[2001:db8:3::11]:80", "without brackets and port"},
      {"198.18.3.0/24", "one address, not a prefix or a VIP"},
      {"198.18.3.11/tcp", "one address, not a prefix or a VIP"},
      {"198.18.3", "'198.18.3' is not an IPv4 or IPv6 address"},
      {"backend1", "'backend1' is not an IPv4 or IPv6 address"},
      {"0.0.0.0", "the unspecified address"},
      {"::1", "the loopback address"},
      {"239.1.1.1", "a multicast address"},
      {"198.18.3.11 ", "contains white space"},
  };
  for (const auto& [text, message] : cases) {
    auto a = parse_backend_address(text);
    ASSERT_FALSE(a.ok()) << "'" << text << "' was accepted";
    EXPECT_TRUE(is_usage_error(a.error()));
    EXPECT_NE(a.error().message.find(message), std::string::npos)
        << "'" << text << "': got \"" << a.error().message << "\"";
  }
}

TEST(Syntax, ClientEndpoints) {
  EXPECT_EQ(parse_client_endpoint("198.18.1.2:40000")->to_string(), "198.18.1.2:40000");
  EXPECT_EQ(parse_client_endpoint("[2001:db8:1::2]:5353")->to_string(), "[2001:db8:1::2]:5353");
  const std::pair<const char*, const char*> cases[] = {
      {"198.18.1.2", "want IPv4:PORT or [IPv6]:PORT"},
      {"2001:db8:1::2:80", "want IPv4:PORT or [IPv6]:PORT"},
      {"[2001:db8:1::2]", "want [IPv6]:PORT"},
      {"198.18.1.2:70000", "port must be 0..65535"},
      {"[198.18.1.2]:80", "only IPv6 addresses go in brackets"},
      {"0.0.0.0:80", "the unspecified address"},
  };
  for (const auto& [text, message] : cases) {
    auto e = parse_client_endpoint(text);
    ASSERT_FALSE(e.ok()) << text;
    EXPECT_NE(e.error().message.find(message), std::string::npos) << e.error().message;
  }
}

TEST(Syntax, NumbersDurationsTcpTargets) {
  EXPECT_EQ(*parse_uint("42", "--weight", 0, 100), 42u);
  EXPECT_EQ(parse_uint("101", "--weight", 0, 100).error().message,
            "--weight: want an integer in [0, 100], got '101'");
  for (const char* bad : {"", "-1", "1.5", "3x", " 3", "99999999999999999999999"}) {
    EXPECT_FALSE(parse_uint(bad, "--n", 0, 100).ok()) << bad;
  }
  using std::chrono::milliseconds;
  EXPECT_EQ(*parse_duration("1s", "--interval"), milliseconds(1000));
  EXPECT_EQ(*parse_duration("2", "--interval"), milliseconds(2000));
  EXPECT_EQ(*parse_duration("500ms", "--interval"), milliseconds(500));
  EXPECT_EQ(*parse_duration("1.5s", "--interval"), milliseconds(1500));
  EXPECT_EQ(*parse_duration("2m", "--interval"), milliseconds(120000));
  EXPECT_EQ(*parse_duration("0", "--interval"), milliseconds(0));
  for (const char* bad : {"", "s", "1h", "-1s", "1.s", ".5s", "1..5s", "1 s", "2d"}) {
    auto d = parse_duration(bad, "--interval");
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.error().message.find("--interval: want a duration"), std::string::npos);
  }
  EXPECT_NE(parse_duration("61m", "--interval").error().message.find("at most 1 hour"),
            std::string::npos);
  auto t = parse_tcp_target("127.0.0.1:9476");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 9476);
  EXPECT_EQ(parse_tcp_target("[::1]:9476")->host, "::1");
  EXPECT_EQ(parse_tcp_target("localhost:1")->host, "localhost");
  for (const char* bad : {"127.0.0.1", "::1:9476", "[::1]", ":9476", "h:0", "h:65536", "h:x"}) {
    EXPECT_FALSE(parse_tcp_target(bad).ok()) << bad;
  }
}

// ---- every command's request --------------------------------------------------------------

struct Expected {
  std::vector<std::string> words;
  std::string method;
  std::string path;
  Json body;  // null: no body
};

TEST(Commands, EachSendsTheRightRequest) {
  const std::string v4 = "/v1/vips/198.18.200.1:80%2Ftcp";
  const Expected cases[] = {
      {w({"status"}), "GET", "/v1/status", nullptr},
      {w({"vip", "list"}), "GET", "/v1/vips", nullptr},
      {w({"vip", "show", "198.18.200.1:80/tcp"}), "GET", v4, nullptr},
      {w({"vip", "add", "198.18.200.1:80/tcp"}),
       "POST",
       "/v1/vips",
       {{"vip", "198.18.200.1:80/tcp"}}},
      {w({"vip", "add", "198.18.200.1:80/tcp", "--name", "web", "--ring-size", "65537", "--no-lru",
          "--hash", "src", "--gue", "--icmp-too-big", "--no-rate-guard"}),
       "POST",
       "/v1/vips",
       {{"vip", "198.18.200.1:80/tcp"},
        {"name", "web"},
        {"ring_size", 65537},
        {"no_lru", true},
        {"hash", "src"},
        {"gue", true},
        {"icmp_too_big", true},
        {"no_rate_guard", true}}},
      {w({"vip", "add", "[2001:db8:200::1]:443/udp"}),
       "POST",
       "/v1/vips",
       {{"vip", "[2001:db8:200::1]:443/udp"}}},
      {w({"vip", "add", "198.18.200.2/tcp", "--hash=5tuple"}),
       "POST",
       "/v1/vips",
       {{"vip", "198.18.200.2/tcp"}, {"hash", "5tuple"}}},
      {w({"vip", "del", "198.18.200.1:80/tcp"}), "DELETE", v4, nullptr},
      {w({"vip", "del", "[2001:db8:200::1]:443/udp"}), "DELETE",
       "/v1/vips/%5B2001:db8:200::1%5D:443%2Fudp", nullptr},
      {w({"backend", "list", "198.18.200.1:80/tcp"}), "GET", v4 + "/backends", nullptr},
      {w({"backend", "add", "198.18.200.1:80/tcp", "198.18.3.11"}),
       "POST",
       v4 + "/backends",
       {{"address", "198.18.3.11"}}},
      {w({"backend", "add", "198.18.200.1:80/tcp", "198.18.3.11", "--weight", "3"}),
       "POST",
       v4 + "/backends",
       {{"address", "198.18.3.11"}, {"weight", 3}}},
      {w({"backend", "add", "[2001:db8:200::1]:443/udp", "2001:db8:3::11", "--state", "draining"}),
       "POST",
       "/v1/vips/%5B2001:db8:200::1%5D:443%2Fudp/backends",
       {{"address", "2001:db8:3::11"}, {"state", "draining"}}},
      {w({"backend", "del", "198.18.200.1:80/tcp", "198.18.3.11"}), "DELETE",
       v4 + "/backends/198.18.3.11", nullptr},
      {w({"backend", "set", "198.18.200.1:80/tcp", "198.18.3.11", "--weight", "5"}),
       "PATCH",
       v4 + "/backends/198.18.3.11",
       {{"weight", 5}}},
      {w({"backend", "set", "198.18.200.1:80/tcp", "198.18.3.11", "--drain"}),
       "PATCH",
       v4 + "/backends/198.18.3.11",
       {{"state", "draining"}}},
      {w({"backend", "set", "198.18.200.1:80/tcp", "198.18.3.11", "--undrain", "--weight", "0"}),
       "PATCH",
       v4 + "/backends/198.18.3.11",
       {{"state", "active"}, {"weight", 0}}},
      {w({"backend", "set", "198.18.200.1:80/tcp", "198.18.3.11", "--disable"}),
       "PATCH",
       v4 + "/backends/198.18.3.11",
       {{"state", "disabled"}}},
      {w({"stats", "--interval", "0"}), "GET", "/v1/stats", nullptr},
      {w({"stats", "198.18.200.1:80/tcp", "--interval=0"}), "GET",
       "/v1/stats?vip=198.18.200.1:80%2Ftcp", nullptr},
      {w({"health"}), "GET", "/v1/health", nullptr},
      {w({"plan", "198.18.200.1:80/tcp", "--remove", "198.18.3.11"}),
       "POST",
       "/v1/plan",
       {{"vip", "198.18.200.1:80/tcp"}, {"remove", "198.18.3.11"}}},
      {w({"plan", "198.18.200.1:80/tcp", "--add", "198.18.3.14", "--weight", "2"}),
       "POST",
       "/v1/plan",
       {{"vip", "198.18.200.1:80/tcp"}, {"add", {{"address", "198.18.3.14"}, {"weight", 2}}}}},
      {w({"plan", "198.18.200.1:80/tcp", "--set", "198.18.3.12", "--weight", "3"}),
       "POST",
       "/v1/plan",
       {{"vip", "198.18.200.1:80/tcp"}, {"set", {{"address", "198.18.3.12"}, {"weight", 3}}}}},
      {w({"plan", "198.18.200.1:80/tcp", "--set", "198.18.3.12", "--drain", "--remove",
          "198.18.3.11"}),
       "POST",
       "/v1/plan",
       {{"vip", "198.18.200.1:80/tcp"},
        {"remove", "198.18.3.11"},
        {"set", {{"address", "198.18.3.12"}, {"state", "draining"}}}}},
      {w({"lookup", "198.18.200.1:80/tcp", "--from", "198.18.1.2:40000"}), "GET",
       "/v1/lookup?vip=198.18.200.1:80%2Ftcp&from=198.18.1.2:40000", nullptr},
      {w({"lookup", "[2001:db8:200::1]:80/tcp", "--from=[2001:db8:1::2]:5353"}), "GET",
       "/v1/lookup?vip=%5B2001:db8:200::1%5D:80%2Ftcp&from=%5B2001:db8:1::2%5D:5353", nullptr},
  };
  for (const auto& c : cases) {
    for (bool json : {false, true}) {
      Cli cli;
      auto words = c.words;
      if (json) words.insert(words.begin(), "-j");
      Outcome o = cli.run(words);
      std::string what = ::testing::PrintToString(words);
      EXPECT_EQ(o.code, kExitOk) << what << ": " << o.err;
      ASSERT_EQ(cli.api.requests.size(), 1u) << what;
      const Request& r = cli.api.requests[0];
      EXPECT_EQ(r.method, c.method) << what;
      EXPECT_EQ(r.path, c.path) << what;
      EXPECT_EQ(r.body, c.body) << what;
      if (json) {
        EXPECT_FALSE(Json::parse(o.out, nullptr, false).is_discarded()) << what << ": " << o.out;
      }
    }
  }
}

TEST(Commands, HelpNeedsNoDaemon) {
  for (auto words : {w({"help"}), w({"--help"}), w({"help", "vip", "add"}), w({"vip", "add", "-h"}),
                     w({"help", "vip"}), w({"vip", "--help"}), w({"-h", "stats"})}) {
    Cli cli;
    Outcome o = cli.run(words);
    EXPECT_EQ(o.code, kExitOk) << ::testing::PrintToString(words) << o.err;
    EXPECT_FALSE(o.out.empty());
    EXPECT_TRUE(cli.api.requests.empty());
  }
  Cli cli;
  EXPECT_NE(cli.run(w({"help"})).out.find("exit status: 0 done, 1 refused by xlbd, 2 usage error"),
            std::string::npos);
  Outcome o = cli.run(w({"help", "backend", "set"}));
  EXPECT_NE(o.out.find("usage: xlbctl backend set VIP ADDRESS (--weight N | --drain"),
            std::string::npos);
  EXPECT_NE(o.out.find("--undrain   state active: new flows again"), std::string::npos) << o.out;
  // Every command of the table has its help and is listed in the overview.
  const std::string overview = general_help();
  for (const auto& c : commands()) {
    EXPECT_NE(overview.find("  " + std::string(c.name)), std::string::npos) << c.name;
    EXPECT_NE(command_help(c).find("usage: xlbctl " + std::string(c.name)), std::string::npos);
  }
}

// ---- exit codes -----------------------------------------------------------------------------

TEST(ExitCodes, UsageErrorsSendNothing) {
  struct Case {
    std::vector<std::string> words;
    std::string message;
  };
  const Case cases[] = {
      {{}, "usage: xlbctl"},
      {w({"frobnicate"}), "unknown command 'frobnicate'"},
      {w({"vip"}), "xlbctl vip: a subcommand is missing"},
      {w({"vip", "remove", "198.18.200.1:80/tcp"}), "unknown subcommand 'remove'"},
      {w({"status", "extra"}), "xlbctl status: unexpected argument 'extra'"},
      {w({"vip", "add"}), "xlbctl vip add: missing argument (want VIP)"},
      {w({"vip", "add", "198.18.200.1:80"}), "the protocol is missing"},
      {w({"vip", "add", "198.18.200.1:80/tcp", "--hash", "random"}),
       "--hash: hash 'random': want 5tuple, src or no-sport"},
      {w({"vip", "add", "198.18.200.1:80/tcp", "--ring-size", "0"}),
       "--ring-size: want an integer"},
      {w({"vip", "add", "198.18.200.1:80/tcp", "--name", ""}), "--name: empty"},
      {w({"vip", "add", "198.18.200.1:80/tcp", "--weight", "3"}), "unknown flag --weight"},
      {w({"backend", "add", "198.18.200.1:80/tcp"}), "missing argument (want VIP ADDRESS)"},
      {w({"backend", "add", "198.18.200.1:80/tcp", "198.18.3.11:80"}), "a backend has no port"},
      {w({"backend", "add", "198.18.200.1:80/tcp", "198.18.3.11", "--weight", "-1"}),
       "--weight: want an integer in [0, 4294967295], got '-1'"},
      {w({"backend", "add", "198.18.200.1:80/tcp", "198.18.3.11", "--state", "up"}),
       "--state: backend state 'up'"},
      {w({"backend", "set", "198.18.200.1:80/tcp", "198.18.3.11"}), "nothing to set"},
      {w({"backend", "set", "198.18.200.1:80/tcp", "198.18.3.11", "--drain", "--undrain"}),
       "give one at most"},
      {w({"backend", "del", "198.18.200.1:80/tcp", "[2001:db8:3::11]"}), "without brackets"},
      {w({"stats", "--count", "3"}), "--count goes with --watch"},
      {w({"stats", "--watch", "--interval", "0"}), "--watch needs an --interval above 0"},
      {w({"stats", "--interval", "soon"}), "--interval: want a duration"},
      {w({"stats", "--watch", "--count", "0"}), "--count: want an integer in [1, 1000000000]"},
      {w({"health", "nonsense"}), "VIP 'nonsense': the protocol is missing"},
      {w({"plan", "198.18.200.1:80/tcp"}), "say what to plan"},
      {w({"plan", "198.18.200.1:80/tcp", "--add", "198.18.3.14", "--set", "198.18.3.11"}),
       "plan one of them at a time"},
      {w({"plan", "198.18.200.1:80/tcp", "--set", "198.18.3.11"}), "--set B needs --weight N"},
      {w({"plan", "198.18.200.1:80/tcp", "--remove", "198.18.3.11", "--weight", "2"}),
       "--weight goes with --add B or --set B"},
      {w({"plan", "198.18.200.1:80/tcp", "--add", "198.18.3.14", "--drain"}),
       "--drain and --undrain go with --set B"},
      {w({"lookup", "198.18.200.1:80/tcp"}), "--from ADDRESS:PORT is required"},
      {w({"lookup", "198.18.200.1:80/tcp", "--from", "198.18.1.2"}), "want IPv4:PORT"},
      {w({"lookup", "198.18.200.1:80/tcp", "--from", "[2001:db8:1::2]:80"}),
       "are of different address families"},
      {w({"help", "nothing"}), "no command 'nothing'"},
      {w({"status", "--socket"}), "--socket needs a value"},
  };
  for (const auto& c : cases) {
    Cli cli;
    Outcome o = cli.run(c.words);
    std::string what = ::testing::PrintToString(c.words);
    EXPECT_EQ(o.code, kExitUsage) << what << ": " << o.err;
    EXPECT_TRUE(cli.api.requests.empty()) << what;
    EXPECT_NE(o.err.find(c.message), std::string::npos) << what << ": " << o.err;
    EXPECT_TRUE(o.out.empty()) << what;
  }
}

TEST(ExitCodes, UsageErrorsShowTheSynopsis) {
  Cli cli;
  Outcome o = cli.run(w({"backend", "set", "198.18.200.1:80", "198.18.3.11", "--drain"}));
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_EQ(o.err,
            "xlbctl backend set: VIP '198.18.200.1:80': the protocol is missing: write "
            "198.18.200.1:80/tcp or 198.18.200.1:80/udp\n"
            "usage: xlbctl backend set VIP ADDRESS (--weight N | --drain | --undrain | --disable)"
            "  (xlbctl help backend set)\n");
}

TEST(ExitCodes, RefusedOperationIsOneWithTheDaemonsMessage) {
  Cli cli;
  cli.api.answers = {http(404, "VIP 198.18.200.1:80/tcp has no backend 198.18.3.19")};
  Outcome o = cli.run(w({"backend", "del", "198.18.200.1:80/tcp", "198.18.3.19"}));
  EXPECT_EQ(o.code, kExitRefused);
  EXPECT_EQ(o.err,
            "xlbctl backend del: refused by xlbd (HTTP 404 Not Found): VIP 198.18.200.1:80/tcp "
            "has no backend 198.18.3.19\n");
  EXPECT_TRUE(o.out.empty());

  Cli conflict;
  conflict.api.answers = {http(409, "VIP 198.18.200.1:80/tcp exists already")};
  EXPECT_EQ(conflict.run(w({"vip", "add", "198.18.200.1:80/tcp"})).code, kExitRefused);

  Cli token;
  token.api.answers = {http(401, "missing or wrong bearer token")};
  Outcome t = token.run(w({"status"}));
  EXPECT_EQ(t.code, kExitRefused);
  EXPECT_NE(t.err.find("hint: check --token-file"), std::string::npos);

  // health filters on the client side; an unknown VIP is refused like the API would.
  Cli health;
  health.api.fallback = {{"checks", "none configured"}, {"vips", Json::array()}};
  Outcome h = health.run(w({"health", "198.18.200.9:80/tcp"}));
  EXPECT_EQ(h.code, kExitRefused);
  EXPECT_NE(h.err.find("no VIP 198.18.200.9:80/tcp"), std::string::npos);
}

TEST(ExitCodes, UnreachableDaemonIsThreeWithAHint) {
  for (int err : {ENOENT, EACCES, ECONNREFUSED, ETIMEDOUT}) {
    Cli cli;
    cli.api.answers = {Error::from_errno(err, "cannot connect to unix:/fake.sock")};
    Outcome o = cli.run(w({"vip", "list"}));
    EXPECT_EQ(o.code, kExitUnreachable) << err;
    EXPECT_NE(o.err.find("xlbctl vip list: cannot reach xlbd: cannot connect to unix:/fake.sock"),
              std::string::npos)
        << o.err;
    EXPECT_NE(o.err.find("hint: is xlbd running? is --socket right? are you root?"),
              std::string::npos);
  }
  // Other transport failures (a garbled answer) are not "unreachable".
  Cli cli;
  cli.api.answers = {Error::from_errno(EPROTO, "GET /v1/vips: the response is not valid JSON")};
  EXPECT_EQ(cli.run(w({"vip", "list"})).code, kExitRefused);
}

// ---- stats: rates and --watch -------------------------------------------------------------

Json stats_sample(uint64_t p1, uint64_t p2, uint64_t b1, uint64_t b2) {
  return {{"vips",
           {{{"vip", "198.18.200.1:80/tcp"},
             {"name", "web"},
             {"packets", p1 + p2},
             {"bytes", b1 + b2},
             {"backends",
              {{{"address", "198.18.3.11"}, {"packets", p1}, {"bytes", b1}, {"share", 0.5}},
               {{"address", "198.18.3.12"}, {"packets", p2}, {"bytes", b2}, {"share", 0.5}}}}}}},
          {"counters", {{"xdp_tx", p1 + p2}, {"xdp_drop", 0}}}};
}

TEST(Stats, RatesFromTwoSamples) {
  Json before = stats_sample(100, 100, 10000, 10000);
  Json now = stats_sample(300, 700, 30000, 70000);
  Json doc = stats_with_rates(now, &before, 2.0);
  EXPECT_EQ(doc["interval_seconds"], 2.0);
  const Json& vip = doc["vips"][0];
  EXPECT_EQ(vip["packets_per_second"], 400.0);
  EXPECT_EQ(vip["bytes_per_second"], 40000.0);
  EXPECT_EQ(vip["backends"][0]["packets_per_second"], 100.0);
  EXPECT_EQ(vip["backends"][1]["bytes_per_second"], 30000.0);
  EXPECT_DOUBLE_EQ(vip["backends"][1]["rate_share"].get<double>(), 0.75);
  EXPECT_EQ(vip["backends"][0]["share"], 0.5);  // the daemon's fields stay
  EXPECT_EQ(doc["counters"]["xdp_tx"], 1000);

  Json single = stats_with_rates(now, nullptr, 0);
  EXPECT_TRUE(single["interval_seconds"].is_null());
  EXPECT_TRUE(single["vips"][0]["packets_per_second"].is_null());
  EXPECT_TRUE(single["vips"][0]["backends"][0]["rate_share"].is_null());

  // Counters that went backwards (maps recreated) give no rate, not a huge one.
  Json reset = stats_with_rates(before, &now, 1.0);
  EXPECT_TRUE(reset["vips"][0]["packets_per_second"].is_null());
}

TEST(Stats, OneShotSamplesTwiceAnIntervalApart) {
  Cli cli;
  cli.api.answers = {stats_sample(100, 100, 10000, 10000), stats_sample(200, 300, 20000, 30000)};
  Outcome o = cli.run(w({"-j", "stats", "--interval", "2s"}));
  ASSERT_EQ(o.code, kExitOk) << o.err;
  EXPECT_EQ(cli.api.requests.size(), 2u);
  ASSERT_EQ(cli.sleeps.size(), 1u);
  EXPECT_EQ(cli.sleeps[0], std::chrono::seconds(2));
  Json doc = Json::parse(o.out);
  EXPECT_EQ(doc["vips"][0]["packets_per_second"], 150.0);
  EXPECT_EQ(doc["vips"][0]["backends"][1]["packets_per_second"], 100.0);
}

TEST(Stats, WatchRedrawsInPlaceCountTimes) {
  Cli cli;
  for (uint64_t i = 0; i <= 3; i++) {
    cli.api.answers.push_back(stats_sample(100 * i, 300 * i, 10000 * i, 30000 * i));
  }
  Outcome o = cli.run(w({"stats", "--watch", "--count", "3", "--interval", "500ms"}));
  ASSERT_EQ(o.code, kExitOk) << o.err;
  EXPECT_EQ(cli.api.requests.size(), 4u);  // a baseline and three samples
  EXPECT_EQ(cli.sleeps.size(), 3u);
  size_t clears = 0;
  for (size_t at = o.out.find("\033[H\033[2J"); at != std::string::npos;
       at = o.out.find("\033[H\033[2J", at + 1)) {
    clears++;
  }
  EXPECT_EQ(clears, 3u);
  EXPECT_NE(o.out.find("sample 3 of 3, every 500ms"), std::string::npos);
  // 200 pps of 800: a quarter of the 30-cell bar, then three quarters.
  EXPECT_NE(o.out.find(std::string(8, '#') + std::string(22, '.')), std::string::npos) << o.out;
  EXPECT_NE(o.out.find(std::string(23, '#') + std::string(7, '.')), std::string::npos);

  Cli json;
  json.api.answers = cli.api.answers;
  Outcome j = json.run(w({"stats", "--watch", "--count", "3", "-j"}));
  ASSERT_EQ(j.code, kExitOk);
  std::istringstream lines(j.out);
  std::string line;
  size_t docs = 0;
  while (std::getline(lines, line)) {
    Json doc = Json::parse(line);
    EXPECT_EQ(doc["vips"][0]["packets_per_second"], 400.0);
    docs++;
  }
  EXPECT_EQ(docs, 3u);
  EXPECT_EQ(j.out.find('\033'), std::string::npos);
}

// ---- tables ---------------------------------------------------------------------------------

TEST(Tables, AlignsColumns) {
  Table t({{"NAME"}, {"PACKETS", Align::kRight}, {"STATE"}});
  t.add_row({"198.18.3.11", "5", "active"});
  t.add_row({"2001:db8:3::11", "123456", "draining"});
  t.add_row({"x"});
  EXPECT_EQ(t.render(),
            "NAME            PACKETS  STATE\n"
            "198.18.3.11           5  active\n"
            "2001:db8:3::11   123456  draining\n"
            "x\n");
  EXPECT_EQ(render_fields({{"vip", "a"}, {"backend", "b"}}), "vip      a\nbackend  b\n");
}

TEST(Tables, NumberFormats) {
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(5ull << 30), "5.0 GiB");
  EXPECT_EQ(human_rate(950), "950");
  EXPECT_EQ(human_rate(2.5), "2.5");
  EXPECT_EQ(human_rate(12345), "12.3k");
  EXPECT_EQ(human_rate(4.2e6), "4.2M");
  EXPECT_EQ(percent(0.3322), "33.2%");
  EXPECT_EQ(human_duration(3725), "1h 2m 5s");
  EXPECT_EQ(human_duration(5), "5s");
  EXPECT_EQ(bar(0.25, 8), "##......");
  EXPECT_EQ(bar(2, 4), "####");
}

const Json kVip = Json::parse(R"({
  "vip": "198.18.200.1:80/tcp", "name": "web", "no_lru": false, "hash": "5tuple", "gue": true,
  "icmp_too_big": false, "no_rate_guard": false, "ring_size": 65537,
  "ring_size_requested": null, "index": 0, "packets": 3010, "bytes": 301000,
  "backends": [
    {"address": "198.18.3.11", "weight": 1, "state": "active", "effective_weight": 1,
     "slots": 65537, "index": 0, "packets": 1000, "bytes": 100000},
    {"address": "198.18.3.12", "weight": 2, "state": "draining", "effective_weight": 0,
     "slots": 0, "index": null, "packets": 2000, "bytes": 200000}
  ]})");

TEST(Tables, VipListSample) {
  EXPECT_EQ(
      render_vip_list(Json::array({kVip})),
      "VIP                  NAME  HASH    FLAGS   RING  BACKENDS  ACTIVE  PACKETS      BYTES\n"
      "198.18.200.1:80/tcp  web   5tuple  gue    65537         2       1     3010  293.9 KiB\n");
  EXPECT_EQ(render_vip_list(Json::array()), "no VIPs\n");
}

TEST(Tables, BackendsSample) {
  EXPECT_EQ(render_backends(kVip["backends"]),
            "ADDRESS      WEIGHT  STATE     EFFECTIVE  SLOTS  RING SHARE  PACKETS      BYTES\n"
            "198.18.3.11       1  active            1  65537      100.0%     1000   97.7 KiB\n"
            "198.18.3.12       2  draining          0      0        0.0%     2000  195.3 KiB\n");
}

TEST(Tables, PlanLookupAndStatsSamples) {
  Json plan = Json::parse(R"({"vip": "198.18.200.1:80/tcp", "ring_size": 7, "slots_changed": 2,
    "moved_fraction": 0.2857, "backends": [
      {"address": "198.18.3.11", "slots_before": 4, "slots_after": 2, "slots_gained": 0,
       "slots_lost": 2},
      {"address": "198.18.3.12", "slots_before": 3, "slots_after": 5, "slots_gained": 2,
       "slots_lost": 0}]})");
  EXPECT_EQ(render_plan(plan),
            "plan for VIP 198.18.200.1:80/tcp, ring of 7 slots (nothing was changed)\n"
            "BACKEND      SLOTS NOW  SLOTS AFTER  GAINED  LOST\n"
            "198.18.3.11          4            2       0    -2\n"
            "198.18.3.12          3            5      +2     0\n"
            "28.57% of new flows would move to another backend (2 of 7 slots change owner)\n");
  Json lookup = {{"vip", "198.18.200.1:80/tcp"},
                 {"from", "198.18.1.2:40000"},
                 {"backend", "198.18.3.11"},
                 {"backend_index", 0},
                 {"from_table", false}};
  EXPECT_EQ(render_lookup(lookup),
            "vip         198.18.200.1:80/tcp\n"
            "from        198.18.1.2:40000\n"
            "backend     198.18.3.11\n"
            "index       0\n"
            "decided by  the Maglev ring (no connection-table entry)\n");
  Json before = stats_sample(0, 0, 0, 0);
  Json doc = stats_with_rates(stats_sample(1000, 3000, 100000, 300000), &before, 1.0);
  EXPECT_EQ(render_stats(doc, 10),
            "VIP 198.18.200.1:80/tcp (web): 4000 packets, 390.6 KiB; 4.0k pps, 3.2M bit/s\n"
            "  BACKEND      PACKETS      BYTES  SHARE   PPS   BIT/S  RATE\n"
            "  198.18.3.11     1000   97.7 KiB  50.0%  1.0k  800.0k  ###.......\n"
            "  198.18.3.12     3000  293.0 KiB  50.0%  3.0k    2.4M  ########..\n"
            "data plane counters: xdp_tx=4000\n");
}

TEST(Tables, HealthSample) {
  Json health = Json::parse(R"({"vips": [{"vip": "198.18.200.1:80/tcp", "name": "web",
    "check": "http", "all_down": "keep-last-set", "backends": [
      {"address": "198.18.3.11", "state": "active", "weight": 1, "effective_weight": 10,
       "check": "http", "health": "up", "up": true, "weight_factor": 1.0,
       "last_result": "HTTP 200", "since": 1000.5, "rise_progress": 0, "rise": 2,
       "fall_progress": 0, "fall": 3, "checks": 1520, "failures": 0, "transitions": 0},
      {"address": "198.18.3.12", "state": "draining", "weight": 1, "effective_weight": 0,
       "check": "http", "health": "down", "up": false, "weight_factor": 0.0,
       "last_result": "connect: Connection refused", "since": 4000,
       "rise_progress": 1, "rise": 2, "fall_progress": 0, "fall": 3, "checks": 1519,
       "failures": 7, "transitions": 1}]},
    {"vip": "198.18.200.2/tcp", "name": "", "check": "none", "all_down": "drop",
     "backends": [{"address": "198.18.3.13", "state": "active", "weight": 2,
       "effective_weight": 2, "health": "unchecked", "last_result": "", "since": 0,
       "rise": 0, "fall": 0, "checks": 0, "failures": 0}]}]})");
  EXPECT_EQ(render_health(health, 4125.0),
            "VIP 198.18.200.1:80/tcp (web): check http, all down: keep-last-set\n"
            "  BACKEND      STATE     HEALTH  WEIGHT  EFFECTIVE  RISE  FALL  CHECKS  FAILED   "
            "SINCE  LAST RESULT\n"
            "  198.18.3.11  active    up           1         10   0/2   0/3    1520       0  52m 4s"
            "  HTTP 200\n"
            "  198.18.3.12  draining  down         1          0   1/2   0/3    1519       7   2m 5s"
            "  connect: Connection refused\n"
            "VIP 198.18.200.2/tcp: check none, all down: drop\n"
            "  BACKEND      STATE   HEALTH     WEIGHT  EFFECTIVE  RISE  FALL  CHECKS  FAILED  SINCE"
            "  LAST RESULT\n"
            "  198.18.3.13  active  unchecked       2          2     -     -       0       0      -"
            "  -\n");
}

TEST(Tables, MissingFieldsPrintDashes) {
  EXPECT_EQ(render_backends(Json::array({Json{{"address", "198.18.3.11"}}})),
            "ADDRESS      WEIGHT  STATE  EFFECTIVE  SLOTS  RING SHARE  PACKETS  BYTES\n"
            "198.18.3.11       -  -              -      -           -        -    0 B\n");
}

TEST(Tables, StatusShowsDiscoverySourcesAndMarksStaleOnes) {
  Json status = {{"version", "0.1.0"}, {"discovery", nullptr}};
  EXPECT_NE(render_status(status, "unix:/fake.sock", "0.1.0").find("discovery   not configured"),
            std::string::npos);
  status["discovery"] = {
      {"debounce_ms", 50},
      {"generation", 7},
      {"update_errors", 0},
      {"last_error", ""},
      {"discovered_vips", 2},
      {"discovered_backends", 5},
      {"merge_notes", {"VIP 198.18.200.9:80/tcp: name 'web' is taken by configuration"}},
      {"sources",
       {{{"name", "registry"}, {"type", "etcd"}, {"priority", 100}, {"state", "stale"},
         {"revision", 42}, {"events_applied", 9}, {"events_rejected", 1}, {"stale_total", 1},
         {"detail", "http://127.0.0.1:2379: connection refused"}, {"problems", Json::array()}},
        {{"name", "hooks"}, {"type", "push"}, {"priority", 300}, {"state", "connected"},
         {"revision", nullptr}, {"events_applied", 3}, {"events_rejected", 0},
         {"stale_total", 0}, {"detail", ""}}}}};
  std::string text = render_status(status, "unix:/fake.sock", "0.1.0");
  EXPECT_NE(text.find("2 source(s), 5 backend(s) in 2 VIP(s), update 7 (0 refused), debounce 50 ms"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nnote: VIP 198.18.200.9:80/tcp: name 'web' is taken"), std::string::npos);
  EXPECT_NE(text.find("SOURCE    TYPE  PRIO  STATE"), std::string::npos) << text;
  EXPECT_NE(text.find("registry  etcd   100  stale (!)"), std::string::npos) << text;
  EXPECT_NE(text.find("hooks     push   300  connected"), std::string::npos) << text;
}

TEST(Commands, EventsPushSendsTheFileAsTheBody) {
  char path[] = "/tmp/xlbctl-events-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  Json events = {{{"kind", "remove_backend"},
                  {"vip", "198.18.200.1:80/tcp"},
                  {"backend", {{"address", "198.18.3.11"}}}}};
  std::ofstream(path) << events.dump();

  Cli cli;
  cli.api.answers = {Json{{"source", "hooks"}, {"replace", true}, {"accepted", 1},
                          {"rejected", Json::array()}}};
  Outcome o = cli.run(w({"events", "push", "--source", "hooks", "--replace", path}));
  EXPECT_EQ(o.code, kExitOk) << o.err;
  ASSERT_EQ(cli.api.requests.size(), 1u);
  EXPECT_EQ(cli.api.requests[0].method, "POST");
  EXPECT_EQ(cli.api.requests[0].path, "/v1/events");
  EXPECT_EQ(cli.api.requests[0].body,
            (Json{{"events", events}, {"source", "hooks"}, {"replace", true}}));
  EXPECT_NE(o.out.find("queued 1 event(s) for source hooks (replacing its content)"),
            std::string::npos);

  // Rejections: exit 1 with xlbd's message naming the bad events.
  Cli refused;
  refused.api.answers = {http(400, "1 event(s) rejected, none of the body was applied: "
                                   "events[0]: bad_address: 'x' is not an address")};
  Outcome r = refused.run(w({"events", "push", path}));
  EXPECT_EQ(r.code, kExitRefused);
  EXPECT_NE(r.err.find("events[0]: bad_address"), std::string::npos) << r.err;

  // Not JSON, or missing: a usage error, nothing sent.
  std::ofstream(path) << "{not json";
  Cli bad;
  EXPECT_EQ(bad.run(w({"events", "push", path})).code, kExitUsage);
  EXPECT_EQ(bad.run(w({"events", "push", "/nonexistent/events.json"})).code, kExitUsage);
  std::ofstream(path) << "42";
  EXPECT_EQ(bad.run(w({"events", "push", path})).code, kExitUsage);
  EXPECT_TRUE(bad.api.requests.empty());
  unlink(path);
}

// ---- bash completion ----------------------------------------------------------------------

TEST(Completion, KnowsEveryCommandAndFlag) {
  std::ifstream in(XLBCTL_COMPLETION);
  ASSERT_TRUE(in) << XLBCTL_COMPLETION;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  auto line_with = [&](const std::string& needle) -> std::string {
    for (const auto& l : lines) {
      if (l.find(needle) != std::string::npos) return l;
    }
    return "";
  };
  const std::string top = line_with("_xlbctl_top=");
  for (const auto& c : commands()) {
    std::string name(c.name);
    auto space = name.find(' ');
    std::string first = name.substr(0, space);
    EXPECT_NE(top.find(first), std::string::npos) << first;
    if (space != std::string::npos) {
      std::string subs = line_with("\"" + first + "\") echo");
      EXPECT_NE(subs.find(name.substr(space + 1)), std::string::npos) << name;
    }
    if (c.flags.empty()) continue;
    std::string flags = line_with("\"" + name + "\") echo");
    ASSERT_FALSE(flags.empty()) << "no flag list for " << name;
    for (const auto& f : c.flags) {
      EXPECT_NE(flags.find("--" + std::string(f.name)), std::string::npos)
          << name << " --" << f.name;
    }
  }
}

}  // namespace
}  // namespace xlbctl
