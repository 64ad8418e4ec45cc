// Enrolment: the enrolment token is traded once for a device identity
// (POST /api/v1/enroll, docs/tracker.md) kept in <data>/credentials.json,
// mode 0600, written atomically. The request is signed by the device key,
// <data>/device-key, made at the first enrolment and kept (docs/identity.md):
// the tracker binds the device's name to it, and a node that lost its
// credentials enrols again with it. The credential, passkey and key are
// secrets: nothing here logs them, and Status messages never contain them.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/ed25519.h"
#include "core/status.h"
#include "node/daemon/node_config.h"
#include "tracker/api/enrolment.h"

namespace flotilla::node {

using tracker::DeviceCredentials;

// The stored credentials, or NotFound when the device never enrolled.
// Refuses a file readable by group or others (PermissionDenied).
Result<DeviceCredentials> LoadCredentials(const std::string& path);

// The device key at `path`, made and stored (atomically, durably, mode
// 0600) when there is none. A key file readable by group or others, or not
// a key, is an error: it is never replaced.
Result<Ed25519PrivateKey> LoadOrCreateDeviceKey(const std::string& path);

// Binds the device key to a device enrolled without one (by 0.1.0, before
// nodes had keys), by its credential (POST /api/v1/devices/<id>/key,
// docs/identity.md): the key is made if there is none. Once per run of the
// node: OK once bound (or bound already, to this key); a tracker that
// predates the route (404) or refuses the key (409, 403) ends the attempts
// with a warning; anything else (the tracker unreachable) is tried again
// after kRetry. Runs on the loop, like the reporter: one bounded HTTP
// exchange per attempt.
class KeyBinder {
 public:
  KeyBinder(const NodeConfig& config, const DataLayout& layout, Executor& loop)
      : config_(config), layout_(layout), timer_(loop) {}
  void Start(const DeviceCredentials& credentials);
  void Stop() { timer_.Cancel(); }
  bool done() const { return done_; }

  static constexpr Duration kRetry = std::chrono::minutes(5);

 private:
  void Attempt();

  const NodeConfig& config_;
  const DataLayout& layout_;
  TimerSlot timer_;
  DeviceCredentials credentials_;
  bool started_ = false;
  bool done_ = false;
};

// Loads the stored credentials, or enrols with the configured token and
// stores the answer. Unavailable when the tracker cannot be reached.
Result<DeviceCredentials> EnsureEnrolled(const NodeConfig& config, const DataLayout& layout);

}  // namespace flotilla::node
