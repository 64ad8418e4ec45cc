// systemd's service notification protocol, without libsystemd.
//
// A service of Type=notify tells systemd about itself with datagrams of
// newline-separated "KEY=VALUE" lines ("READY=1", "STATUS=...",
// "WATCHDOG=1", "STOPPING=1") sent to the AF_UNIX socket named by
// $NOTIFY_SOCKET: a filesystem path ("/run/systemd/notify") or an abstract
// name written with a leading '@'. When systemd runs the service with
// WatchdogSec=, it sets $WATCHDOG_USEC (and $WATCHDOG_PID, the process it
// is meant for); the service must send WATCHDOG=1 more often than that or
// systemd kills and (with Restart=) restarts it. docs/node.md, "Running
// under systemd".
//
// Without $NOTIFY_SOCKET (not started by systemd) every Notify is a no-op.
// Errors are values and never fatal: a service that cannot notify still runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace flotilla::node {

class SdNotifier {
 public:
  // A notifier that sends nothing (no socket, no watchdog).
  SdNotifier() = default;

  // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. With
  // `unset_environment` it then removes them, so that child processes (the
  // runtime's monitors and the apps) neither inherit nor misuse them.
  // Lenient: a malformed variable is described in `*problem` (OK otherwise)
  // and left out; what is valid is used (a bad $WATCHDOG_USEC keeps the socket).
  // REQUIRES: no other thread reads or writes the environment meanwhile.
  static SdNotifier FromEnvironment(bool unset_environment, Status* problem);

  // Strict: `socket` as in $NOTIFY_SOCKET ("": disabled); `watchdog_usec`
  // and `watchdog_pid` as in their variables ("": unset). Any malformed
  // value is an error.
  static Result<SdNotifier> FromValues(std::string socket, std::string_view watchdog_usec,
                                       std::string_view watchdog_pid);

  // Whether a notification socket is configured.
  bool enabled() const { return !socket_.empty(); }

  // The period systemd expects WATCHDOG=1 within, if it asked this process
  // for one (WATCHDOG_PID unset or equal to getpid()).
  std::optional<std::chrono::microseconds> watchdog_period() const { return watchdog_; }

  // Sends `state` ("READY=1\nSTATUS=following 2 apps") as one datagram.
  // A no-op returning OK when !enabled(). Never blocks: when systemd's queue
  // is full the notification is dropped with an error. Thread-safe.
  Status Notify(std::string_view state) const;

 private:
  std::string socket_;  // as in $NOTIFY_SOCKET
  std::optional<std::chrono::microseconds> watchdog_;
};

// "STATUS=<text>" with every line break of `text` replaced by "; ", so that
// it stays one field of a notification.
std::string StatusLine(std::string_view text);

// Keeps systemd's watchdog fed from tasks that run on `executor`, so that a
// stuck event loop stops the pings and systemd restarts the service.
//
// The waiting thread calls Tick() about every half watchdog period; Tick()
// posts one ping task unless the previous one has not run yet (a stuck loop
// so accumulates one pending ping, not one per period). The task sends
// "WATCHDOG=1" (when the notifier has a watchdog) and "STATUS=<status()>"
// (when `status` is set; it runs on the executor, so it may read the
// executor's state). The posted task owns what it uses: the watchdog may be
// destroyed before the executor. Thread-safe.
class ExecutorWatchdog {
 public:
  ExecutorWatchdog(SdNotifier notifier, Executor& executor,
                   std::function<std::string()> status = nullptr);

  // Returns true if a ping task was posted.
  bool Tick();
  // Pings whose task has run and whose datagram was sent.
  uint64_t pings_sent() const { return shared_->sent.load(); }
  // The last error of a ping's Notify (OK if none).
  Status last_error() const;

 private:
  struct Shared {
    SdNotifier notifier;
    std::function<std::string()> status;
    std::atomic<bool> pending{false};
    std::atomic<uint64_t> sent{0};
    std::mutex mu;
    Status last_error;
  };
  std::shared_ptr<Shared> shared_;
  Executor& executor_;
};

}  // namespace flotilla::node
