// The receiving end of NOTIFY_SOCKET, as systemd holds it: an AF_UNIX
// datagram socket with SO_PASSCRED, so every notification carries the
// sender's pid (systemd's NotifyAccess=main accepts only the main pid's).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

namespace flotilla::testing {

struct Notification {
  std::string text;  // "READY=1\nSTATUS=..."
  pid_t pid = 0;     // the sender's process (thread group) id
  std::chrono::steady_clock::time_point at;
};

class NotifyListener {
 public:
  ~NotifyListener();
  // Binds `address`: a path, or "@name" for an abstract socket. False on failure.
  bool Bind(const std::string& address);
  // The next notification within `timeout`, if any.
  std::optional<Notification> Receive(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string path_;  // unlinked on destruction (empty: abstract)
};

// Whether the notification holds the line `line` ("READY=1").
bool HasLine(const Notification& n, const std::string& line);
// The value of `key` ("STATUS") in the notification, or "".
std::string ValueOf(const Notification& n, const std::string& key);

}  // namespace flotilla::testing
