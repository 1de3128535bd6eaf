// SPDX-License-Identifier: Apache-2.0
// Attaching an XDP program to an interface.
//
// Preferred: libxdp's multi-program dispatcher, so xlb can share the NIC with other XDP
// programs. When the dispatcher is unavailable (kernels where freplace programs are refused,
// as on our test machines), the program is attached as a plain bpf_link instead: a link can be
// pinned (it survives the daemon) and its program replaced atomically (hitless upgrade).
// Modes: native (driver) or generic (skb); auto tries native first.
#pragma once

#include <string>
#include <string_view>

#include "xlb/core/result.h"
#include "xlb/dataplane/fd.h"

struct xdp_program;

namespace xlb::dataplane {

enum class AttachMode { kAuto, kNative, kGeneric };
const char* to_string(AttachMode mode);
Result<AttachMode> parse_attach_mode(std::string_view text);

enum class AttachMethod { kDispatcher, kLink };
const char* to_string(AttachMethod method);

class XdpAttachment {
 public:
  // `allow_dispatcher` false goes straight to a bpf_link.
  static Result<XdpAttachment> attach(int prog_fd, const std::string& ifname, AttachMode mode,
                                      bool allow_dispatcher = true);
  // Adopts a link pinned by an earlier process.
  static Result<XdpAttachment> open_pinned(const std::string& path);

  XdpAttachment(XdpAttachment&& other) noexcept;
  XdpAttachment& operator=(XdpAttachment&& other) noexcept;
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;
  // Detaches, unless keep() was called or the link is pinned (then only the fd closes).
  ~XdpAttachment();

  Status pin(const std::string& path);
  Status replace_program(int prog_fd);
  Status detach();
  // Leave the program attached when this object goes.
  void keep() { keep_ = true; }

  int ifindex() const { return ifindex_; }
  AttachMode mode() const { return mode_; }
  AttachMethod method() const { return method_; }
  // Id of the program attached now.
  Result<uint32_t> prog_id() const;

 private:
  XdpAttachment() = default;
  void release_all();

  int ifindex_ = 0;
  AttachMode mode_ = AttachMode::kNative;
  AttachMethod method_ = AttachMethod::kLink;
  UniqueFd link_;
  xdp_program* xdp_prog_ = nullptr;
  bool keep_ = false;
  bool pinned_ = false;
};

}  // namespace xlb::dataplane
