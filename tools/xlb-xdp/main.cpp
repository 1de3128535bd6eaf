// SPDX-License-Identifier: Apache-2.0
// xlb-xdp: attaches xlb's helper XDP programs to an interface and pins them, so they stay after
// the command exits. The lab uses it inside its namespaces (run it there with
// `nsenter --net=/run/netns/NAME`: `ip netns exec` remounts /sys, and pins made under it vanish).
//
//   xlb-xdp decap IFACE [--local-v4 A] [--local-v6 B] [--gue-port 6080] --pin-dir DIR
//   xlb-xdp pass IFACE --pin-dir DIR
//   xlb-xdp detach --pin-dir DIR
//   xlb-xdp stats --pin-dir DIR [--json]
//
// DIR (on bpffs) holds `link` (the XDP bpf_link) and, for decap, the program's maps
// `decap_config` and `decap_counters`. Detaching the pinned link removes the program even when
// no process holds it; DIR is then removed.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gflags/gflags.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/result.h"
#include "xlb/dataplane/attach.h"
#include "xlb/dataplane/decap.h"
#include "xlb/dataplane/fd.h"
#include "xlb/dataplane/map.h"

DEFINE_string(pin_dir, "", "bpffs directory for the pinned link and maps (required)");
DEFINE_string(local_v4, "", "decap: this host's IPv4 tunnel address (empty: no IPv4 outer)");
DEFINE_string(local_v6, "", "decap: this host's IPv6 tunnel address (empty: no IPv6 outer)");
DEFINE_int32(gue_port, XLB_DEFAULT_GUE_PORT, "decap: GUE UDP port (0: no GUE)");
DEFINE_string(mode, "native", "attach mode: native, generic or auto");
DEFINE_bool(json, false, "stats: print one JSON object");

namespace {

namespace fs = std::filesystem;
using xlb::Error;
using xlb::Result;
using xlb::Status;
using xlb::dataplane::UniqueFd;

constexpr const char* kUsage =
    "xlb-xdp decap IFACE [--local-v4 A] [--local-v6 B] [--gue-port P] --pin-dir DIR\n"
    "  xlb-xdp pass IFACE --pin-dir DIR\n"
    "  xlb-xdp detach --pin-dir DIR\n"
    "  xlb-xdp stats --pin-dir DIR [--json]";

constexpr const char* kLinkPin = "link";
constexpr const char* kConfigMap = "decap_config";
constexpr const char* kCountersMap = "decap_counters";

const char* const kCounterNames[] = {
#define XLB_DECAP_COUNTER_NAME(name, metric, help) metric,
    XLB_DECAP_COUNTERS(XLB_DECAP_COUNTER_NAME)
#undef XLB_DECAP_COUNTER_NAME
};
static_assert(sizeof(kCounterNames) / sizeof(kCounterNames[0]) == XLB_DCNT__MAX);

int fail(const Error& e) {
  std::fprintf(stderr, "xlb-xdp: %s\n", e.to_string().c_str());
  return 1;
}

bool on_bpffs(const std::string& path) {
  struct statfs st {};
  return statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

// Creates DIR (and missing parents) on bpffs. A DIR that already holds a live link is refused;
// an empty one is reused.
Status prepare_pin_dir(const std::string& dir) {
  std::error_code ec;
  bool created = false;
  if (fs::exists(dir, ec)) {
    std::string link = dir + "/" + kLinkPin;
    if (fs::exists(link, ec)) {
      int fd = bpf_obj_get(link.c_str());
      if (fd >= 0) {
        close(fd);
        return Error::invalid(dir +
                              " already holds a pinned XDP link: run `xlb-xdp detach "
                              "--pin-dir " +
                              dir + "` first");
      }
    }
    if (!fs::is_empty(dir, ec)) {
      return Error::invalid(dir + " exists and is not empty: pick another --pin-dir or detach");
    }
  } else {
    fs::create_directories(dir, ec);
    if (ec) return Error::from_errno(ec.value(), "creating pin directory " + dir);
    created = true;
  }
  if (!on_bpffs(dir)) {
    if (created) fs::remove(dir, ec);
    return Error::invalid(dir +
                          " is not on a bpffs mount (want e.g. /sys/fs/bpf/...; inside "
                          "`ip netns exec` /sys is remounted: use nsenter --net instead)");
  }
  return {};
}

Result<uint32_t> parse_v4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) {
    return Error::invalid("--local-v4 '" + text + "' is not an IPv4 address");
  }
  return a.s_addr;
}

Result<xlb_addr> parse_v6(const std::string& text) {
  xlb_addr out{};
  if (inet_pton(AF_INET6, text.c_str(), out.words) != 1) {
    return Error::invalid("--local-v6 '" + text + "' is not an IPv6 address");
  }
  return out;
}

// The ids of the maps a program uses, by the name the kernel keeps (truncated to 15 chars).
Result<UniqueFd> map_of_prog(int prog_fd, const std::string& name) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) {
    return Error::from_errno(errno, "reading program info");
  }
  std::vector<uint32_t> ids(info.nr_map_ids);
  info = {};
  info.nr_map_ids = ids.size();
  info.map_ids = reinterpret_cast<uint64_t>(ids.data());
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) {
    return Error::from_errno(errno, "reading program map ids");
  }
  for (uint32_t id : ids) {
    UniqueFd fd(bpf_map_get_fd_by_id(id));
    if (!fd.valid()) continue;
    bpf_map_info minfo{};
    uint32_t mlen = sizeof(minfo);
    if (bpf_obj_get_info_by_fd(fd.get(), &minfo, &mlen) == 0 && name == minfo.name) return fd;
  }
  return Error::invalid("the attached program has no map '" + name +
                        "' (is this a decap attachment?)");
}

Result<UniqueFd> prog_of_link(const std::string& dir) {
  std::string path = dir + "/" + kLinkPin;
  UniqueFd link(bpf_obj_get(path.c_str()));
  if (!link.valid()) return Error::from_errno(errno, "opening pinned link " + path);
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0) {
    return Error::from_errno(errno, "reading link info of " + path);
  }
  UniqueFd prog(bpf_prog_get_fd_by_id(info.prog_id));
  if (!prog.valid()) return Error::from_errno(errno, "opening the program of " + path);
  return prog;
}

// Attaches `prog_fd` to `ifname` and pins the link as DIR/link. On failure DIR is left empty.
Status attach_and_pin(int prog_fd, const std::string& ifname, const std::string& dir) {
  auto mode = xlb::dataplane::parse_attach_mode(FLAGS_mode);
  if (!mode) return mode.error();
  auto att = xlb::dataplane::XdpAttachment::attach(prog_fd, ifname, *mode,
                                                   /*allow_dispatcher=*/false);
  if (!att) return att.error();
  XLB_TRY(att->pin(dir + "/" + kLinkPin));
  return {};
}

Status check_iface(const std::string& ifname) {
  if (ifname.size() >= IF_NAMESIZE)
    return Error::invalid("interface name '" + ifname + "' too long");
  if (if_nametoindex(ifname.c_str()) == 0) {
    return Error::from_errno(errno,
                             "interface '" + ifname + "' not found in this network namespace");
  }
  return {};
}

void remove_pins(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove(entry.path(), ec);
  fs::remove(dir, ec);
}

int cmd_decap(const std::string& ifname, const std::string& dir) {
  xlb_decap_config cfg{};
  if (!FLAGS_local_v4.empty()) {
    auto v4 = parse_v4(FLAGS_local_v4);
    if (!v4) return fail(v4.error());
    cfg.local_v4 = *v4;
  }
  if (!FLAGS_local_v6.empty()) {
    auto v6 = parse_v6(FLAGS_local_v6);
    if (!v6) return fail(v6.error());
    cfg.local_v6 = *v6;
  }
  if (FLAGS_gue_port < 0 || FLAGS_gue_port > 65535) {
    return fail(Error::invalid("--gue-port must be 0..65535"));
  }
  if (FLAGS_local_v4.empty() && FLAGS_local_v6.empty()) {
    return fail(Error::invalid("decap needs --local-v4 and/or --local-v6"));
  }
  cfg.gue_port = htons(static_cast<uint16_t>(FLAGS_gue_port));
  if (auto st = check_iface(ifname); !st) return fail(st.error());
  if (auto st = prepare_pin_dir(dir); !st) return fail(st.error());

  auto decap = xlb::dataplane::Decap::load();
  if (!decap) return fail(decap.error());
  if (auto st = (*decap)->set_config(cfg); !st) return fail(st.error());
  // Maps first: once the link is pinned, the attachment is complete and detach can clean up.
  for (const char* name : {kConfigMap, kCountersMap}) {
    auto map = map_of_prog((*decap)->prog_fd(), name);
    std::string path = dir + "/" + name;
    if (!map) {
      remove_pins(dir);
      return fail(map.error());
    }
    if (bpf_obj_pin(map->get(), path.c_str()) != 0) {
      Error e = Error::from_errno(errno, "pinning map at " + path);
      remove_pins(dir);
      return fail(e);
    }
  }
  if (auto st = attach_and_pin((*decap)->prog_fd(), ifname, dir); !st) {
    remove_pins(dir);
    return fail(st.error());
  }
  std::printf("xlb-xdp: decap on %s (v4 %s, v6 %s, gue %d), pinned in %s\n", ifname.c_str(),
              FLAGS_local_v4.empty() ? "-" : FLAGS_local_v4.c_str(),
              FLAGS_local_v6.empty() ? "-" : FLAGS_local_v6.c_str(), FLAGS_gue_port, dir.c_str());
  return 0;
}

int cmd_pass(const std::string& ifname, const std::string& dir) {
  if (auto st = check_iface(ifname); !st) return fail(st.error());
  if (auto st = prepare_pin_dir(dir); !st) return fail(st.error());
  auto helpers = xlb::dataplane::HelperPrograms::load();
  if (!helpers) return fail(helpers.error());
  if (auto st = attach_and_pin((*helpers)->pass_fd(), ifname, dir); !st) {
    remove_pins(dir);
    return fail(st.error());
  }
  std::printf("xlb-xdp: pass on %s, pinned in %s\n", ifname.c_str(), dir.c_str());
  return 0;
}

int cmd_detach(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    std::printf("xlb-xdp: %s does not exist: nothing to detach\n", dir.c_str());
    return 0;
  }
  std::string link = dir + "/" + kLinkPin;
  int rc = 0;
  if (fs::exists(link, ec)) {
    auto att = xlb::dataplane::XdpAttachment::open_pinned(link);
    if (!att) {
      fail(att.error());
      rc = 1;
    } else if (auto st = att->detach(); !st) {
      fail(st.error());
      rc = 1;
    }
  }
  remove_pins(dir);
  if (fs::exists(dir, ec)) {
    std::fprintf(stderr, "xlb-xdp: could not remove %s\n", dir.c_str());
    return 1;
  }
  if (rc == 0) std::printf("xlb-xdp: detached, %s removed\n", dir.c_str());
  return rc;
}

int cmd_stats(const std::string& dir) {
  // The pinned map when present; else through the attached program (a DIR made by an older
  // xlb-xdp, or maps unpinned by hand).
  std::string path = dir + "/" + kCountersMap;
  UniqueFd map(bpf_obj_get(path.c_str()));
  if (!map.valid()) {
    auto prog = prog_of_link(dir);
    if (!prog) return fail(prog.error());
    auto found = map_of_prog(prog->get(), kCountersMap);
    if (!found) return fail(found.error());
    map = std::move(*found);
  }
  xlb::dataplane::PerCpuArray<xlb_decap_counters> counters(
      xlb::dataplane::MapRef(map.get(), kCountersMap));
  auto per_cpu = counters.lookup_all(0);
  if (!per_cpu) return fail(per_cpu.error());
  xlb_decap_counters sum{};
  for (const auto& c : *per_cpu) {
    for (int i = 0; i < XLB_DCNT__MAX; i++) sum.c[i] += c.c[i];
  }
  if (FLAGS_json) {
    std::printf("{");
    for (int i = 0; i < XLB_DCNT__MAX; i++) {
      std::printf("%s\"%s\":%llu", i ? "," : "", kCounterNames[i],
                  static_cast<unsigned long long>(sum.c[i]));
    }
    std::printf("}\n");
  } else {
    for (int i = 0; i < XLB_DCNT__MAX; i++) {
      std::printf("%-16s %llu\n", kCounterNames[i], static_cast<unsigned long long>(sum.c[i]));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto usage = [] {
    std::fprintf(stderr, "usage: %s\n", kUsage);
    return 2;
  };
  if (args.empty()) return usage();
  const std::string& cmd = args[0];
  if (FLAGS_pin_dir.empty()) {
    std::fprintf(stderr, "xlb-xdp: --pin-dir is required\n");
    return usage();
  }
  std::string dir = FLAGS_pin_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  if (cmd == "decap" && args.size() == 2) return cmd_decap(args[1], dir);
  if (cmd == "pass" && args.size() == 2) return cmd_pass(args[1], dir);
  if (cmd == "detach" && args.size() == 1) return cmd_detach(dir);
  if (cmd == "stats" && args.size() == 1) return cmd_stats(dir);
  return usage();
}
