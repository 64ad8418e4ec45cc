#include "node/systemd/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace flotilla::node {
namespace {

// systemd reads at most this much of one notification (NOTIFY_BUFFER_MAX).
constexpr size_t kMaxNotification = 4096;
// STATUS= is shown in one line of `systemctl status`.
constexpr size_t kMaxStatusText = 1024;

std::string Getenv(const char* name) {
  const char* value = ::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

Result<uint64_t> ParsePositive(std::string_view text, std::string_view name) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value == 0) {
    return InvalidArgument(std::string(name) + ": '" + std::string(text) +
                           "' is not a positive integer");
  }
  return value;
}

// The address of $NOTIFY_SOCKET: a path, or an abstract name after '@'.
Status MakeAddress(const std::string& socket, sockaddr_un& address, socklen_t& length) {
  std::memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  if (socket.size() < 2 || (socket[0] != '/' && socket[0] != '@')) {
    return InvalidArgument("NOTIFY_SOCKET: '" + socket +
                           "' is neither an absolute path nor an abstract '@' name");
  }
  if (socket.size() >= sizeof address.sun_path) {
    return InvalidArgument("NOTIFY_SOCKET: longer than " +
                           std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::memcpy(address.sun_path, socket.data(), socket.size());
  // An abstract name has no terminating NUL: its length is the address length.
  if (socket[0] == '@') address.sun_path[0] = '\0';
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() +
                                  (socket[0] == '/' ? 1 : 0));
  return Status::Ok();
}

}  // namespace

Result<SdNotifier> SdNotifier::FromValues(std::string socket, std::string_view watchdog_usec,
                                          std::string_view watchdog_pid) {
  SdNotifier notifier;
  if (!socket.empty()) {
    sockaddr_un address;
    socklen_t length = 0;
    RETURN_IF_ERROR(MakeAddress(socket, address, length));
    notifier.socket_ = std::move(socket);
  }
  if (watchdog_usec.empty()) return notifier;
  ASSIGN_OR_RETURN(uint64_t usec, ParsePositive(watchdog_usec, "WATCHDOG_USEC"));
  if (!watchdog_pid.empty()) {
    ASSIGN_OR_RETURN(uint64_t pid, ParsePositive(watchdog_pid, "WATCHDOG_PID"));
    if (pid != static_cast<uint64_t>(::getpid())) return notifier;  // meant for another process
  }
  notifier.watchdog_ = std::chrono::microseconds(usec);
  return notifier;
}

SdNotifier SdNotifier::FromEnvironment(bool unset_environment, Status* problem) {
  const std::string socket = Getenv("NOTIFY_SOCKET");
  const std::string usec = Getenv("WATCHDOG_USEC");
  const std::string pid = Getenv("WATCHDOG_PID");
  if (unset_environment) {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
  }
  auto full = FromValues(socket, usec, pid);
  *problem = full.status();
  if (full.ok()) return *std::move(full);
  auto socket_only = FromValues(socket, "", "");
  return socket_only.ok() ? *std::move(socket_only) : SdNotifier();
}

Status SdNotifier::Notify(std::string_view state) const {
  if (!enabled()) return Status::Ok();
  if (state.empty() || state.size() > kMaxNotification) {
    return InvalidArgument("sd_notify: a notification is 1.." + std::to_string(kMaxNotification) +
                           " bytes");
  }
  sockaddr_un address;
  socklen_t length = 0;
  RETURN_IF_ERROR(MakeAddress(socket_, address, length));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return IOErrorFromErrno("sd_notify: socket", errno);
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                                reinterpret_cast<const sockaddr*>(&address), length);
  const int send_error = errno;
  ::close(fd);
  if (sent < 0) return IOErrorFromErrno("sd_notify: send to " + socket_, send_error);
  if (static_cast<size_t>(sent) != state.size()) return Internal("sd_notify: short datagram");
  return Status::Ok();
}

std::string StatusLine(std::string_view text) {
  std::string line = "STATUS=";
  for (char c : text.substr(0, kMaxStatusText)) {
    if (c == '\n') {
      line += "; ";
    } else if (c != '\r') {
      line += c;
    }
  }
  return line;
}

ExecutorWatchdog::ExecutorWatchdog(SdNotifier notifier, Executor& executor,
                                   std::function<std::string()> status)
    : shared_(std::make_shared<Shared>()), executor_(executor) {
  shared_->notifier = std::move(notifier);
  shared_->status = std::move(status);
}

bool ExecutorWatchdog::Tick() {
  if (shared_->pending.exchange(true)) return false;  // the last ping has not run: stuck
  executor_.Post([shared = shared_] {
    std::string state;
    if (shared->notifier.watchdog_period()) state = "WATCHDOG=1";
    if (shared->status) state += (state.empty() ? "" : "\n") + StatusLine(shared->status());
    Status sent = state.empty() ? Status::Ok() : shared->notifier.Notify(state);
    shared->pending = false;
    if (sent.ok()) {
      ++shared->sent;
    } else {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->last_error = sent;
    }
  });
  return true;
}

Status ExecutorWatchdog::last_error() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->last_error;
}

}  // namespace flotilla::node
