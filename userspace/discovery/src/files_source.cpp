// SPDX-License-Identifier: Apache-2.0
// Files source: a directory of service files, watched with inotify.
//
// A file is read when it is complete: IN_CLOSE_WRITE (written in place and closed) or
// IN_MOVED_TO (renamed into place: the atomic way config-management tools write). IN_CREATE is
// not a signal: the file may still be half written. Each file is its own scope, applied whole
// (kReplaceScope), so a file never shows half-applied. A file that does not parse is reported
// (status problems, a rejection counted) and its last good content stays in service. Deleting
// or renaming a file away removes its entries.
//
// Kubernetes ConfigMap volumes swap a hidden "..data" symlink instead of touching the files; a
// change of any ".."-entry triggers a rescan, which reapplies only files whose content changed.
// A queue overflow also rescans. If the directory itself disappears, the source goes stale and
// keeps every entry until the directory is back.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "hub.h"
#include "xlb/discovery/service_file.h"

namespace xlb::discovery::detail {
namespace {

class FilesSource final : public Source {
 public:
  FilesSource(const SourceConfig& config, Hub& hub) : config_(config), hub_(hub) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { run(); });
  }
  ~FilesSource() override { stop(); }

  void stop() override {
    if (stopped_.exchange(true)) return;
    cancel_ = true;
    uint64_t one = 1;
    if (stop_fd_ >= 0) (void)!::write(stop_fd_, &one, sizeof(one));
    hub_.wake_submitters();
    if (thread_.joinable()) thread_.join();
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }

 private:
  struct FileState {
    std::string content;  // last good content ("" until one parsed)
    bool good = false;    // `content` was applied
    std::string problem;  // why the current file is ignored, "" if it is not
  };

  void run();
  bool start_watch();
  void rescan();
  void load(const std::string& name);
  void forget(const std::string& name);
  void publish_problems();
  // Waits up to `ms` for the stop signal; true when stopping.
  bool sleep_ms(int ms);

  const std::string& name() const { return config_.name; }
  bool is_symlink(const std::string& file) const {
    struct stat st {};
    return ::lstat(path_of(file).c_str(), &st) == 0 && S_ISLNK(st.st_mode);
  }
  std::string path_of(const std::string& file) const { return config_.files.dir + "/" + file; }

  SourceConfig config_;
  Hub& hub_;
  int stop_fd_ = -1;
  int inotify_fd_ = -1;
  int watch_ = -1;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> cancel_{false};
  std::map<std::string, FileState> files_;
  std::thread thread_;
};

bool FilesSource::sleep_ms(int ms) {
  pollfd p{stop_fd_, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0 || cancel_;
}

bool FilesSource::start_watch() {
  if (inotify_fd_ < 0) {
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) {
      hub_.set_state(name(), SourceState::kError,
                     std::string("inotify_init1: ") + std::strerror(errno));
      return false;
    }
  }
  struct stat st {};
  if (::stat(config_.files.dir.c_str(), &st) != 0) {
    const int err = errno;
    // A directory that was there and went away is a source gone down; one never seen is a
    // setup problem.
    hub_.set_state(name(), files_.empty() ? SourceState::kError : SourceState::kStale,
                   config_.files.dir + ": " + std::strerror(err));
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    hub_.set_state(name(), SourceState::kError, config_.files.dir + " is not a directory");
    return false;
  }
  const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                        IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
  watch_ = ::inotify_add_watch(inotify_fd_, config_.files.dir.c_str(), mask);
  if (watch_ < 0) {
    hub_.set_state(name(), SourceState::kError,
                   "inotify_add_watch " + config_.files.dir + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

void FilesSource::run() {
  int backoff_ms = 100;
  while (!cancel_) {
    if (watch_ < 0) {
      if (!start_watch()) {
        if (sleep_ms(backoff_ms)) return;
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      backoff_ms = 100;
      // Watch first, then read: a file written in between is seen by both, never by neither.
      rescan();
      hub_.set_state(name(), SourceState::kConnected, config_.files.dir);
    }
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (cancel_ || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;

    alignas(inotify_event) char buf[64 * 1024];
    bool need_rescan = false;
    bool lost = false;
    std::set<std::string> changed, removed;
    for (;;) {
      ssize_t len = ::read(inotify_fd_, buf, sizeof(buf));
      if (len <= 0) break;
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
          need_rescan = true;
          continue;
        }
        // Events of an earlier watch (its IN_IGNORED after inotify_rm_watch) are history.
        if (ev->wd != watch_) continue;
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) lost = true;
        if (ev->len == 0) continue;
        const std::string file(ev->name);
        if (file.starts_with("..")) {  // a ConfigMap's atomic swap
          need_rescan = true;
          continue;
        }
        if (!service_file_format(file)) continue;
        // A symlink is complete when created (`ln -s`, ConfigMap keys): no close-write follows.
        const bool new_link = (ev->mask & IN_CREATE) && is_symlink(file);
        if ((ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) || new_link) {
          changed.insert(file);
          removed.erase(file);
        } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
          removed.insert(file);
          changed.erase(file);
        }
      }
    }
    if (lost) {
      // The directory is gone (or moved): keep every entry, go stale, watch again when back.
      if (watch_ >= 0) ::inotify_rm_watch(inotify_fd_, watch_);
      watch_ = -1;
      hub_.set_state(name(), SourceState::kStale,
                     config_.files.dir + " disappeared; last good entries kept");
      continue;
    }
    if (need_rescan) {
      rescan();
      hub_.update(name(), [](SourceStatus& s) { s.full_resyncs_total++; });
    } else {
      for (const auto& f : removed) forget(f);
      for (const auto& f : changed) load(f);
    }
    publish_problems();
    hub_.mark_good(name());
  }
}

void FilesSource::rescan() {
  DIR* dir = ::opendir(config_.files.dir.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> present;
  while (dirent* d = ::readdir(dir)) {
    std::string file = d->d_name;
    if (!service_file_format(file)) continue;
    present.push_back(std::move(file));
  }
  ::closedir(dir);
  std::sort(present.begin(), present.end());
  for (const auto& f : present) load(f);
  // Files that went away while nobody watched.
  std::vector<std::string> gone;
  for (const auto& [file, st] : files_) {
    if (!std::binary_search(present.begin(), present.end(), file)) gone.push_back(file);
  }
  for (const auto& f : gone) forget(f);
  // Scopes of files this instance never read (a restarted source) go too.
  Batch retain{.mode = Batch::Mode::kRetainScopes, .source = name(), .scopes = present};
  hub_.submit(std::move(retain), cancel_);
  publish_problems();
}

void FilesSource::load(const std::string& file) {
  const std::string path = path_of(file);
  // Symlinks are followed: ConfigMap volumes are made of them.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return;  // renamed away meanwhile: its IN_MOVED_FROM follows
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return;
  }
  std::string text;
  bool too_large = false;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) {
      too_large = true;
      break;
    }
  }
  ::close(fd);
  FileState& state = files_[file];
  if (state.good && state.content == text && state.problem.empty()) return;  // unchanged
  Result<std::vector<Event>> events =
      too_large ? Result<std::vector<Event>>(
                      rejection(Reject::kTooLarge,
                                path + ": larger than " + std::to_string(kMaxFileBytes) + " bytes"))
                : parse_service_file(text, *service_file_format(file), path);
  if (!events) {
    state.problem = events.error().message;
    hub_.reject(name(), events.error());
    return;
  }
  state.problem.clear();
  if (state.good && state.content == text) return;
  state.content = std::move(text);
  state.good = true;
  Batch batch{.mode = Batch::Mode::kReplaceScope, .source = name(), .scope = file};
  batch.events = std::move(*events);
  hub_.submit(std::move(batch), cancel_);
}

void FilesSource::forget(const std::string& file) {
  files_.erase(file);
  Batch batch{.mode = Batch::Mode::kReplaceScope, .source = name(), .scope = file};
  hub_.submit(std::move(batch), cancel_);
}

void FilesSource::publish_problems() {
  std::vector<std::string> problems;
  for (const auto& [file, st] : files_) {
    if (st.problem.empty()) continue;
    problems.push_back(st.problem + (st.good ? " (its last good content stays)" : " (ignored)"));
  }
  hub_.update(name(), [&](SourceStatus& s) { s.problems = std::move(problems); });
}

}  // namespace

std::unique_ptr<Source> start_files_source(const SourceConfig& config, Hub& hub) {
  return std::make_unique<FilesSource>(config, hub);
}

}  // namespace xlb::discovery::detail
