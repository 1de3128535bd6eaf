// SPDX-License-Identifier: Apache-2.0
// xlb-pktgen: a load generator for kernels without pktgen. See kHelp (and docs/bench-lab.md).
#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "xlb/dataplane/attach.h"
#include "xlb/dataplane/decap.h"
#include "xlb/pktgen/generator.h"
#include "xlb/pktgen/netns.h"

namespace {

using namespace xlb;
using namespace xlb::pktgen;

constexpr const char* kHelp = R"(usage: xlb-pktgen --netns NS --dev DEV [options]

Sends frames out of DEV, an interface in the network namespace NS, with BPF_PROG_TEST_RUN in
live-frame mode (BPF_F_TEST_XDP_LIVE_FRAMES, batches of 64): every frame leaves DEV as if DEV
had received it and an XDP program had returned XDP_TX. On a veth pair the frames arrive at the
peer, which must run an XDP program (or use --peer). What the peer sends back to DEV is counted
by a sink program attached to DEV for the run (unless --no-sink). Prints the achieved rates.

Safety: NS must not be the initial network namespace. After entering NS the generator compares
the inode of /proc/thread-self/ns/net with /proc/1/ns/net (kthreadd's /proc/2/ns/net where a
sandbox hides PID 1's) and refuses to send when they match, or when it cannot tell: only
namespaces made for testing (by the bench, a test, or by hand) receive traffic. Addresses
must be in 198.18.0.0/15 or 2001:db8::/32. Every run is bounded by --count and --duration-ms.

Frames: client c of --flows N has source address SRC + c and source port 1024 + c; with
--new-connections the source port advances with every frame of a client (a new connection
per frame; a tuple recurs after N x 64512 frames). Threads split the same sequence.

options:
  --netns NS           network namespace: a name under /run/netns or a path such as
                       /proc/PID/ns/net (required)
  --dev DEV            interface in NS to send from (required)
  --peer NS2:DEV2      attach an XDP_TX reflector to DEV2 in NS2 for the run, so frames
                       come back to DEV (NS2 must not be the initial namespace either)
  --family 4|6         address family (default 4)
  --proto P            tcp-syn, tcp-ack or udp (default udp)
  --flows N            clients, 1..1048576 (default 1)
  --new-connections    a new source port for every frame of a client
  --size BYTES         frame size from the Ethernet header, no FCS: 64 (74 for IPv6 TCP)
                       up to 1514 (default 64 or the smallest that fits)
  --src ADDR           client 0's address (default 198.18.128.0 / 2001:db8:1::1:0)
  --dst ADDR           destination (default 198.18.200.1 / 2001:db8:200::1)
  --dport PORT         destination port (default 80)
  --src-mac MAC        default 02:00:00:00:01:fe
  --dst-mac MAC        default 02:00:00:00:02:01
  --count N            frames in total, 1..10000000000 (default 1000000)
  --duration-ms MS     stop after this long even before --count, 1..600000 (default 10000)
  --threads N          generator threads, one per CPU, pinned to the first N CPUs this
                       process may use (default 1)
  --no-sink            do not attach the counting sink to DEV
  --json               print one JSON object
  --help               this text

exit status: 0 sent, 1 failed while running, 2 bad arguments or refused.
)";

struct Args {
  std::string netns, dev, peer;
  int family = 4;
  std::string proto = "udp";
  uint64_t flows = 1;
  bool new_connections = false;
  std::optional<uint64_t> size;
  std::string src, dst, src_mac, dst_mac;
  uint64_t dport = 80;
  uint64_t count = 1'000'000;
  uint64_t duration_ms = 10'000;
  uint64_t threads = 1;
  bool sink = true;
  bool json = false;
  bool help = false;
};

Result<uint64_t> parse_number(const std::string& name, std::string_view text, uint64_t min,
                              uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return Error::invalid("--" + name + " '" + std::string(text) + "': want a number " +
                          std::to_string(min) + ".." + std::to_string(max));
  }
  return v;
}

// The option table: every flag, whether it takes a value, and where the value goes.
struct Option {
  std::string name;
  bool takes_value;
  std::function<Status(std::string_view)> set;
};

std::vector<Option> options(Args& a) {
  auto text = [](std::string& out) {
    return [&out](std::string_view v) -> Status {
      out = v;
      return {};
    };
  };
  auto number = [](std::string name, uint64_t& out, uint64_t min, uint64_t max) {
    return [name, &out, min, max](std::string_view v) -> Status {
      auto n = parse_number(name, v, min, max);
      if (!n) return n.error();
      out = *n;
      return {};
    };
  };
  auto flag = [](bool& out, bool value) {
    return [&out, value](std::string_view) -> Status {
      out = value;
      return {};
    };
  };
  return {
      {"netns", true, text(a.netns)},
      {"dev", true, text(a.dev)},
      {"peer", true, text(a.peer)},
      {"family", true,
       [&a](std::string_view v) -> Status {
         if (v != "4" && v != "6") return Error::invalid("--family: want 4 or 6");
         a.family = v == "4" ? 4 : 6;
         return {};
       }},
      {"proto", true, text(a.proto)},
      {"flows", true, number("flows", a.flows, 1, kMaxFlows)},
      {"new-connections", false, flag(a.new_connections, true)},
      {"size", true,
       [&a](std::string_view v) -> Status {
         auto n = parse_number("size", v, 1, kMaxFrameSize);
         if (!n) return n.error();
         a.size = *n;
         return {};
       }},
      {"src", true, text(a.src)},
      {"dst", true, text(a.dst)},
      {"dport", true, number("dport", a.dport, 1, 65535)},
      {"src-mac", true, text(a.src_mac)},
      {"dst-mac", true, text(a.dst_mac)},
      {"count", true, number("count", a.count, 1, 10'000'000'000ull)},
      {"duration-ms", true, number("duration-ms", a.duration_ms, 1, 600'000)},
      {"threads", true, number("threads", a.threads, 1, 1024)},
      {"no-sink", false, flag(a.sink, false)},
      {"json", false, flag(a.json, true)},
      {"help", false, flag(a.help, true)},
  };
}

Status parse_args(int argc, char** argv, Args& a) {
  auto table = options(a);
  for (int i = 1; i < argc; i++) {
    std::string word = argv[i];
    if (word.rfind("--", 0) != 0) return Error::invalid("unexpected argument '" + word + "'");
    std::string name = word.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto opt =
        std::find_if(table.begin(), table.end(), [&](const Option& o) { return o.name == name; });
    if (opt == table.end()) return Error::invalid("unknown option --" + name + " (see --help)");
    if (opt->takes_value && !value) {
      if (i + 1 >= argc) return Error::invalid("--" + name + " needs a value");
      value = argv[++i];
    }
    if (!opt->takes_value && value) return Error::invalid("--" + name + " takes no value");
    XLB_TRY(opt->set(value.value_or("")));
  }
  return {};
}

Result<FrameSpec> spec_of(const Args& a) {
  Family family = a.family == 4 ? Family::kV4 : Family::kV6;
  FrameSpec spec = default_spec(family);
  auto proto = parse_proto(a.proto);
  if (!proto) return proto.error();
  spec.proto = *proto;
  spec.flows = static_cast<uint32_t>(a.flows);
  spec.new_connections = a.new_connections;
  spec.size = a.size ? static_cast<uint32_t>(*a.size) : default_frame_size(family, *proto);
  spec.dport = static_cast<uint16_t>(a.dport);
  for (auto [text, out] : {std::pair{&a.src, &spec.src}, std::pair{&a.dst, &spec.dst}}) {
    if (text->empty()) continue;
    auto ip = IpAddress::parse(*text);
    if (!ip) return ip.error();
    *out = *ip;
  }
  for (auto [text, out] :
       {std::pair{&a.src_mac, &spec.src_mac}, std::pair{&a.dst_mac, &spec.dst_mac}}) {
    if (text->empty()) continue;
    try {
      *out = test::mac(*text);
    } catch (const std::invalid_argument&) {
      return Error::invalid("MAC address '" + *text +
                            "': want six hex bytes like 02:00:00:00:00:01");
    }
  }
  XLB_TRY(validate(spec));
  return spec;
}

// A namespace the generator may touch: opened, and not the initial one.
Result<dataplane::UniqueFd> open_test_netns(const std::string& name) {
  auto fd = open_netns(name);
  if (!fd) return fd.error();
  auto initial = is_initial_netns(fd->get());
  if (!initial) return initial.error();
  if (*initial) {
    return Error::invalid("refusing: " + name +
                          " is the initial network namespace (use one made for testing)");
  }
  return fd;
}

// The first `n` CPUs this process may run on.
Result<std::vector<int>> first_cpus(size_t n) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    return Error::from_errno(errno, "reading the CPU affinity");
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < n; c++) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (cpus.size() < n) {
    return Error::invalid("--threads " + std::to_string(n) + ": only " +
                          std::to_string(cpus.size()) + " CPUs available");
  }
  return cpus;
}

int usage_error(const Error& e) {
  std::fprintf(stderr, "xlb-pktgen: %s\n", e.to_string().c_str());
  return 2;
}

int runtime_error(const Error& e) {
  std::fprintf(stderr, "xlb-pktgen: %s\n", e.to_string().c_str());
  return 1;
}

int run(const Args& a) {
  if (a.netns.empty() || a.dev.empty()) {
    return usage_error(Error::invalid("--netns and --dev are required (see --help)"));
  }
  auto spec = spec_of(a);
  if (!spec) return usage_error(spec.error());
  auto ns = open_test_netns(a.netns);
  if (!ns) return usage_error(ns.error());
  auto ifindex = ifindex_in(ns->get(), a.dev);
  if (!ifindex) return usage_error(ifindex.error());
  auto mtu = mtu_in(ns->get(), a.dev);
  if (!mtu) return usage_error(mtu.error());
  if (spec->size > static_cast<uint32_t>(*mtu) + 14) {
    return usage_error(Error::invalid("--size " + std::to_string(spec->size) + " is larger than " +
                                      a.dev + "'s MTU " + std::to_string(*mtu) + " + 14"));
  }
  std::optional<dataplane::UniqueFd> peer_ns;
  std::string peer_dev;
  if (!a.peer.empty()) {
    auto colon = a.peer.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.peer.size()) {
      return usage_error(Error::invalid("--peer '" + a.peer + "': want NS:DEV"));
    }
    auto fd = open_test_netns(a.peer.substr(0, colon));
    if (!fd) return usage_error(fd.error());
    peer_ns = std::move(*fd);
    peer_dev = a.peer.substr(colon + 1);
    auto idx = ifindex_in(peer_ns->get(), peer_dev);
    if (!idx) return usage_error(idx.error());
  }
  auto cpus = first_cpus(a.threads);
  if (!cpus) return usage_error(cpus.error());

  auto gen = Generator::load();
  if (!gen) return runtime_error(gen.error());
  if (auto st = (*gen)->configure(*spec); !st) return usage_error(st.error());

  // Attachments live until the end of run(): the sink on DEV, the reflector on the peer
  // (declared after the programs: detached first).
  std::unique_ptr<dataplane::HelperPrograms> helpers;
  std::optional<dataplane::XdpAttachment> sink, reflector;
  if (a.sink) {
    auto att = run_in_netns(ns->get(), [&] {
      return dataplane::XdpAttachment::attach((*gen)->sink_fd(), a.dev,
                                              dataplane::AttachMode::kNative, false);
    });
    if (!att) {
      return runtime_error(Error::invalid("attaching the sink to " + a.dev + ": " +
                                          att.error().to_string() + " (or use --no-sink)"));
    }
    sink.emplace(std::move(*att));
  }
  if (peer_ns) {
    auto h = dataplane::HelperPrograms::load();
    if (!h) return runtime_error(h.error());
    helpers = std::move(*h);
    auto att = run_in_netns(peer_ns->get(), [&] {
      return dataplane::XdpAttachment::attach(helpers->floor_tx_fd(), peer_dev,
                                              dataplane::AttachMode::kNative, false);
    });
    if (!att) return runtime_error(att.error());
    reflector.emplace(std::move(*att));
  }

  auto before = (*gen)->sink();
  if (!before) return runtime_error(before.error());
  auto result = (*gen)->inject({.netns_fd = ns->get(),
                                .ifindex = *ifindex,
                                .count = a.count,
                                .max_duration = std::chrono::milliseconds(a.duration_ms),
                                .cpus = *cpus});
  if (!result) return runtime_error(result.error());
  auto after = (*gen)->settled_sink();
  if (!after) return runtime_error(after.error());
  uint64_t returned = *after - *before;
  double secs = result->seconds > 0 ? result->seconds : 1e-9;

  nlohmann::json out = {{"tool", "xlb-pktgen"},
                        {"dev", a.dev},
                        {"family", a.family},
                        {"proto", to_string(spec->proto)},
                        {"flows", spec->flows},
                        {"new_connections", spec->new_connections},
                        {"frame_size", spec->size},
                        {"threads", a.threads},
                        {"batch_size", pktgen::InjectOptions{}.batch_size},
                        {"sent", result->sent},
                        {"seconds", result->seconds},
                        {"sent_mpps", result->sent / secs / 1e6},
                        {"timed_out", result->timed_out}};
  if (a.sink) {
    out["returned"] = returned;
    out["returned_mpps"] = returned / secs / 1e6;
  }
  if (a.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("sent      %llu frames in %.3f s: %.3f Mpps%s\n",
                static_cast<unsigned long long>(result->sent), result->seconds,
                result->sent / secs / 1e6, result->timed_out ? " (stopped by --duration-ms)" : "");
    if (a.sink) {
      std::printf("returned  %llu frames: %.3f Mpps\n", static_cast<unsigned long long>(returned),
                  returned / secs / 1e6);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (auto st = parse_args(argc, argv, args); !st) return usage_error(st.error());
  if (args.help) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  return run(args);
}
