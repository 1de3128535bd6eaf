// SPDX-License-Identifier: Apache-2.0
#include "xlb/dataplane/decap.h"

#include <bpf/libbpf.h>

#include <cerrno>

#include "xlb/skel/decap.skel.h"
#include "xlb/skel/helpers.skel.h"

namespace xlb::dataplane {

Result<std::unique_ptr<Decap>> Decap::load() {
  std::unique_ptr<Decap> d(new Decap());
  d->skel_ = xlb_decap__open_and_load();
  if (!d->skel_) {
    return Error::from_errno(errno, "loading the decap program (verifier log above, if any)");
  }
  auto* m = d->skel_->maps.decap_config;
  d->config_ = decltype(d->config_)(MapRef(bpf_map__fd(m), bpf_map__name(m)));
  m = d->skel_->maps.decap_counters;
  d->counters_ = decltype(d->counters_)(MapRef(bpf_map__fd(m), bpf_map__name(m)));
  return d;
}

Decap::~Decap() { xlb_decap__destroy(skel_); }

int Decap::prog_fd() const { return bpf_program__fd(skel_->progs.xlb_decap); }

Status Decap::set_config(const xlb_decap_config& cfg) { return config_.update(0, cfg); }

Result<xlb_decap_counters> Decap::counters() const {
  auto per_cpu = counters_.lookup_all(0);
  if (!per_cpu) return per_cpu.error();
  xlb_decap_counters sum{};
  for (const auto& c : *per_cpu) {
    for (int i = 0; i < XLB_DCNT__MAX; i++) sum.c[i] += c.c[i];
  }
  return sum;
}

Result<std::unique_ptr<HelperPrograms>> HelperPrograms::load() {
  std::unique_ptr<HelperPrograms> h(new HelperPrograms());
  h->skel_ = xlb_helpers__open_and_load();
  if (!h->skel_) return Error::from_errno(errno, "loading the helper XDP programs");
  return h;
}

HelperPrograms::~HelperPrograms() { xlb_helpers__destroy(skel_); }

int HelperPrograms::floor_tx_fd() const { return bpf_program__fd(skel_->progs.xlb_floor_tx); }

int HelperPrograms::pass_fd() const { return bpf_program__fd(skel_->progs.xlb_pass); }

}  // namespace xlb::dataplane
