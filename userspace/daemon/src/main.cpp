// SPDX-License-Identifier: Apache-2.0
// xlbd: the xlb control-plane daemon.
//
//   xlbd --config /etc/xlb/xlbd.yaml [--interface IF] [--detach-on-exit] [--log-level info]
//   xlbd --check-config FILE        validate a configuration file without touching the kernel
//
// Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT stop cleanly (the data plane keeps
// forwarding unless --detach-on-exit).
#include <gflags/gflags.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "xlb/daemon/daemon.h"
#include "xlb/state/config.h"

DEFINE_string(config, "/etc/xlb/xlbd.yaml", "configuration file (docs/config.md)");
DEFINE_string(interface, "", "interface to attach to, overriding the configuration");
DEFINE_string(check_config, "", "validate this configuration file and exit (0 = valid)");
DEFINE_bool(detach_on_exit, false, "detach the XDP program and remove its pins on exit");
DEFINE_string(log_level, "info", "trace, debug, info, warn, error");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("xlbd --config FILE | --check-config FILE");
  gflags::SetVersionString(XLB_VERSION);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc != 1) {
    std::fprintf(stderr, "xlbd: unexpected argument '%s' (see --help)\n", argv[1]);
    return 2;
  }
  auto level = spdlog::level::from_str(FLAGS_log_level);
  if (level == spdlog::level::off && FLAGS_log_level != "off") {
    std::fprintf(stderr, "xlbd: --log-level %s: want trace, debug, info, warn or error\n",
                 FLAGS_log_level.c_str());
    return 2;
  }
  spdlog::set_level(level);

  if (!FLAGS_check_config.empty()) {
    auto cfg = xlb::daemon::load_daemon_config(FLAGS_check_config);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().to_string().c_str());
      return 1;
    }
    std::printf("%s: valid (%zu VIPs, %zu discovery sources)\n", FLAGS_check_config.c_str(),
                cfg->config.state.vips.size(), cfg->discovery ? cfg->discovery->sources.size() : 0);
    return 0;
  }

  // Signals are taken by sigwait() below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  xlb::daemon::DaemonOptions opts{.config_path = FLAGS_config,
                                  .detach_on_exit = FLAGS_detach_on_exit};
  if (!FLAGS_interface.empty()) opts.interface_override = FLAGS_interface;
  auto daemon = xlb::daemon::Daemon::start(opts);
  if (!daemon) {
    spdlog::error("{}", daemon.error().to_string());
    return 1;
  }
  spdlog::info("xlbd {} running", XLB_VERSION);
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (auto st = (*daemon)->reload(); !st) spdlog::warn("{}", st.error().to_string());
      continue;
    }
    spdlog::info("signal {}: stopping", sig);
    (*daemon)->stop();
    return 0;
  }
}
