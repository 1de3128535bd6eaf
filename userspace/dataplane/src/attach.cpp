// SPDX-License-Identifier: Apache-2.0
#include "xlb/dataplane/attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <cstdarg>
#include <optional>
#include <utility>

namespace xlb::dataplane {
namespace {

// libxdp logs its fallbacks (dispatcher refused) at warning level; they are expected here and
// reported through our own results instead.
int quiet_libxdp(enum libxdp_print_level, const char* fmt, va_list args) {
  if (getenv("XLB_DEBUG_LIBXDP") == nullptr) return 0;
  return vfprintf(stderr, fmt, args);
}

int silent_libbpf(enum libbpf_print_level, const char*, va_list) { return 0; }

// Silences libbpf while libxdp probes for its dispatcher: the refusal is expected on kernels
// without freplace support and is handled by falling back to a bpf_link.
class QuietLibbpf {
 public:
  QuietLibbpf() : previous_(libbpf_set_print(silent_libbpf)) {}
  ~QuietLibbpf() { libbpf_set_print(previous_); }

 private:
  libbpf_print_fn_t previous_;
};

Result<int> ifindex_of(const std::string& ifname) {
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) return Error::from_errno(errno, "interface '" + ifname + "' not found");
  return static_cast<int>(idx);
}

}  // namespace

const char* to_string(AttachMode mode) {
  switch (mode) {
    case AttachMode::kAuto:
      return "auto";
    case AttachMode::kNative:
      return "native";
    case AttachMode::kGeneric:
      return "generic";
  }
  return "?";
}

Result<AttachMode> parse_attach_mode(std::string_view text) {
  if (text == "auto") return AttachMode::kAuto;
  if (text == "native") return AttachMode::kNative;
  if (text == "generic") return AttachMode::kGeneric;
  return Error::invalid("attach mode '" + std::string(text) + "': want auto, native or generic");
}

const char* to_string(AttachMethod method) {
  return method == AttachMethod::kDispatcher ? "libxdp-dispatcher" : "bpf_link";
}

Result<XdpAttachment> XdpAttachment::attach(int prog_fd, const std::string& ifname,
                                            AttachMode mode, bool allow_dispatcher) {
  auto ifindex = ifindex_of(ifname);
  if (!ifindex) return ifindex.error();
  libxdp_set_print(quiet_libxdp);

  AttachMode tries[2] = {AttachMode::kNative, AttachMode::kGeneric};
  int n_tries = 2;
  if (mode != AttachMode::kAuto) {
    tries[0] = mode;
    n_tries = 1;
  }
  Error last{};
  for (int t = 0; t < n_tries; t++) {
    AttachMode m = tries[t];
    if (allow_dispatcher) {
      std::optional<QuietLibbpf> quiet;
      if (getenv("XLB_DEBUG_LIBXDP") == nullptr) quiet.emplace();
      xdp_program* prog = xdp_program__from_fd(prog_fd);
      if (prog && !libxdp_get_error(prog)) {
        auto xmode = m == AttachMode::kNative ? XDP_MODE_NATIVE : XDP_MODE_SKB;
        int err = xdp_program__attach(prog, *ifindex, xmode, 0);
        if (err == 0) {
          // libxdp quietly falls back to a single program without dispatcher; such an
          // attachment can neither be pinned nor upgraded atomically: prefer a link then.
          xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(*ifindex);
          bool legacy = !mp || libxdp_get_error(mp) || xdp_multiprog__is_legacy(mp);
          if (mp && !libxdp_get_error(mp)) xdp_multiprog__close(mp);
          if (!legacy) {
            XdpAttachment a;
            a.ifindex_ = *ifindex;
            a.mode_ = m;
            a.method_ = AttachMethod::kDispatcher;
            a.xdp_prog_ = prog;
            return a;
          }
          xdp_program__detach(prog, *ifindex, xmode, 0);
        }
        xdp_program__close(prog);
      }
    }
    LIBBPF_OPTS(bpf_link_create_opts, opts,
                .flags = m == AttachMode::kNative ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    int fd = bpf_link_create(prog_fd, *ifindex, BPF_XDP, &opts);
    if (fd >= 0) {
      XdpAttachment a;
      a.ifindex_ = *ifindex;
      a.mode_ = m;
      a.method_ = AttachMethod::kLink;
      a.link_.reset(fd);
      return a;
    }
    last = Error::from_errno(errno, std::string("attaching XDP to ") + ifname + " in " +
                                        to_string(m) + " mode (another XDP program there? "
                                        "`ip link show " + ifname + "` tells)");
  }
  return last;
}

Result<XdpAttachment> XdpAttachment::open_pinned(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return Error::from_errno(errno, "opening pinned XDP link " + path);
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.type != BPF_LINK_TYPE_XDP) {
    close(fd);
    return Error::invalid(path + " is not a pinned XDP link");
  }
  XdpAttachment a;
  a.ifindex_ = info.xdp.ifindex;
  a.method_ = AttachMethod::kLink;
  a.link_.reset(fd);
  a.pinned_ = true;
  return a;
}

XdpAttachment::XdpAttachment(XdpAttachment&& o) noexcept { *this = std::move(o); }

XdpAttachment& XdpAttachment::operator=(XdpAttachment&& o) noexcept {
  if (this != &o) {
    release_all();
    ifindex_ = o.ifindex_;
    mode_ = o.mode_;
    method_ = o.method_;
    link_ = std::move(o.link_);
    xdp_prog_ = std::exchange(o.xdp_prog_, nullptr);
    keep_ = o.keep_;
    pinned_ = o.pinned_;
  }
  return *this;
}

XdpAttachment::~XdpAttachment() { release_all(); }

void XdpAttachment::release_all() {
  if (xdp_prog_) {
    if (!keep_) {
      xdp_program__detach(xdp_prog_, ifindex_,
                          mode_ == AttachMode::kNative ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
    }
    xdp_program__close(xdp_prog_);
    xdp_prog_ = nullptr;
  }
  if (link_.valid() && keep_ && !pinned_) {
    // An unpinned link dies with its last fd: leak the fd on purpose so the program stays
    // until this process exits.
    link_.release();
  }
  link_.reset();
}

Status XdpAttachment::pin(const std::string& path) {
  if (method_ != AttachMethod::kLink) {
    return Error::invalid("only a bpf_link attachment can be pinned (dispatcher in use)");
  }
  if (bpf_obj_pin(link_.get(), path.c_str()) != 0) {
    return Error::from_errno(errno, "pinning XDP link at " + path);
  }
  pinned_ = true;
  return {};
}

Status XdpAttachment::replace_program(int prog_fd) {
  if (method_ != AttachMethod::kLink) {
    return Error::invalid("atomic program replacement needs a bpf_link attachment");
  }
  if (bpf_link_update(link_.get(), prog_fd, nullptr) != 0) {
    return Error::from_errno(errno, "replacing the XDP program");
  }
  return {};
}

Status XdpAttachment::detach() {
  if (xdp_prog_) {
    int err = xdp_program__detach(xdp_prog_, ifindex_,
                                  mode_ == AttachMode::kNative ? XDP_MODE_NATIVE : XDP_MODE_SKB,
                                  0);
    xdp_program__close(xdp_prog_);
    xdp_prog_ = nullptr;
    if (err) return Error::from_errno(err, "detaching XDP program");
    return {};
  }
  if (link_.valid()) {
    if (bpf_link_detach(link_.get()) != 0) return Error::from_errno(errno, "detaching XDP link");
    link_.reset();
  }
  return {};
}

Result<uint32_t> XdpAttachment::prog_id() const {
  if (xdp_prog_) return xdp_program__id(xdp_prog_);
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_.get(), &info, &len) != 0) {
    return Error::from_errno(errno, "reading XDP link info");
  }
  return info.prog_id;
}

}  // namespace xlb::dataplane
