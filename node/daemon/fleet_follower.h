// The fleet follower: keeps the device's signed fleet document fresh and,
// once it has accepted one, says which release of which app the device runs
// (docs/fleet.md, "What a node checks"; docs/node.md, "Parts").
//
// The fleet root is the image repository's verified target fleet/root.json:
// the first time the image repository offers it, it is downloaded (its
// signed length and hashes checked) and becomes the trusted root of
// <data>/fleet/tuf, a second TUF client directory. Each poll then refreshes
// the device's own fleet repository (<tracker>/fleet/devices/<id>/, behind
// the device's credential) with the full TUF workflow and checks the fleet
// document, in this order:
//   1. `device` is this device's enrolled id;
//   2. each app's `target`, `length` and `hashes` equal the image
//      repository's verified target of that name, whose release is the
//      app's `release`;
//   3. the release is not below the app's floor (FleetFloor), which the
//      image repository's offline keys sign;
//   4. the app's `config` is accepted by that release's signed spec
//      (appspec::CheckConfigValues: declared, not reserved, matching);
//   5. each of the app's `secrets` is declared a secret by that spec, opens
//      with the device key (<data>/device-key) and its value matches the
//      declared pattern (the value is wiped at once; never in a message).
// A document that passes is stored (<data>/fleet/accepted.json, atomically
// and durably) and handed on as the releases to run. One that fails, or
// metadata that is expired, forged, rolled back or unreachable, is refused:
// nothing is handed on, what runs keeps running, and the reason is in the
// log, the next report and `status`. Once a document was accepted the node
// never goes back to its local apps list, across restarts too.
//
// A notice answer may carry the device's new fleet files (Carry): the next
// poll's refresh reads them first (CarriedRemote) and verifies them exactly
// as fetched ones; what they lack is fetched.
//
// Schedule: a poll (one refresh of the fleet repository, over a connection
// kept open from poll to poll) every refresh_interval_s, and at once on
// PollNow (the notice watcher's news); a failed one is retried after 5 s, doubling with each
// failure in a row up to max_backoff_s; waits are jittered by +-10%.
//
// Thread-safety: none; everything runs on the loop. A poll holds the loop for
// its HTTP exchanges (bounded by the client's timeouts), as a metadata
// refresh does.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "appspec/app_spec.h"
#include "core/clock.h"
#include "core/status.h"
#include "http/http_client.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "node/daemon/carried_fleet_files.h"
#include "node/daemon/enrolment.h"
#include "tracker/api/maintenance_window.h"

namespace flotilla::node {

inline constexpr char kFleetRootTarget[] = "fleet/root.json";
inline constexpr char kFleetDocumentTarget[] = "device.json";

// One app of a fleet document: the image repository's release target.
struct FleetAppChoice {
  uint64_t release = 0;
  std::string target;  // e.g. apps/kiosk/release-7.json
  uint64_t length = 0;
  std::map<std::string, std::string> hashes;
  // The device's configuration values of the app (docs/config.md); checked
  // against the spec of the release chosen.
  appspec::ConfigValues config;
  // NAME -> the base64 box of a secret sealed to this device's key
  // (docs/config.md, "Secrets"); opened and checked, never kept in clear.
  std::map<std::string, std::string> secrets;
};

struct FleetDocument {
  std::string device;
  std::map<std::string, FleetAppChoice> apps;
  // When the device may switch an app to a new release (docs/fleet.md,
  // "Maintenance windows"); empty: at any time.
  std::vector<tracker::MaintenanceWindow> windows;
};

// The newest fleet document format this node reads (docs/fleet.md).
inline constexpr uint64_t kFleetDocumentFormat = 1;

// Parses the fleet document's bytes: `apps` and `device`, each app with
// `hashes`, `length`, `release`, `target`, an optional `config` and an
// optional `secrets` (objects of strings); app names as release targets name apps; `windows` when
// present, each window well formed. `format` (1 when absent) above kFleetDocumentFormat is refused;
// members this node does not know are ignored (a newer tracker's additions).
Result<FleetDocument> ParseFleetDocument(std::string_view bytes);

// The document the node follows, as stored in <data>/fleet/accepted.json.
struct AcceptedFleet {
  FleetDocument document;
  std::string document_bytes;    // as signed
  uint64_t targets_version = 0;  // of the device's fleet targets metadata
  int64_t expires_unix = 0;      // its expiry
  int64_t accepted_unix = 0;     // when it was last accepted
};

struct FleetFollowerOptions {
  std::string data_dir;
  std::string tracker_url;  // the fleet repository and the fleet root come from here
  http::ClientOptions http;
  uint32_t refresh_interval_s = 300;
  uint32_t max_backoff_s = 1800;
  uint64_t jitter_seed = 0;  // 0: a random seed
};

struct FleetEvents {
  // An accepted document's releases, each checked against the image
  // repository: the apps the device runs and the release of each.
  std::function<void(const std::map<std::string, metadata::Release>&)> choices;
  std::function<void(const std::string& error)> error;  // for the next report
};

// The lowest release of an app the node may be sent (0: none), from the
// image repository's verified metadata `image` (metadata::TrustedFloor: the
// floor its offline keys sign, docs/signing.md "The release floor"). An
// error refuses the document.
using FleetFloor =
    std::function<Result<uint64_t>(metadata::TufClient& image, const std::string& app)>;

// What the checks of a fleet document need besides the image repository.
struct FleetCheckContext {
  std::string device_id;        // the enrolled id the document must name
  FleetFloor floor;             // null: no floor
  std::string device_key_path;  // <data>/device-key, to open the document's secrets
};

// Checks 1-5 of a fleet document (above) against the image repository's
// verified metadata `image`: the release of each app it names, or why it is refused.
Result<std::map<std::string, metadata::Release>> CheckFleetDocument(
    const FleetDocument& document, metadata::TufClient& image, const FleetCheckContext& context);

// A document the full TUF workflow verified and the checks passed.
struct VerifiedFleet {
  AcceptedFleet accepted;
  std::map<std::string, metadata::Release> releases;
};

// Expired fleet metadata (the refresh set its expiry aside) stands offline
// only as far as the release whose offline window the import uses vouches
// for it: the document names exactly that release for its app, the release's
// window (capped by the image root, docs/metadata.md) covers the fleet
// refresh's start, and the fleet time floor moves to at most the window's
// start. Otherwise FailedPrecondition naming the expiry and why.
Status ApplyFleetOfflineWindow(metadata::TufClient& fleet, const metadata::TufClient& image,
                               const std::map<std::string, metadata::Release>& chosen,
                               const metadata::Release& windowed);

// The image metadata trusted in `tuf_dir`, verified again from `remote` (a
// DirectoryRemote on it: no network) for the fleet document's checks. With
// `offline_release` (an import that used that release's offline validity
// window, docs/metadata.md), expired metadata stands within its window as in
// the import's own verification.
Result<std::unique_ptr<metadata::TufClient>> TrustedImageMetadata(
    const std::string& tuf_dir, metadata::RemoteRepository& remote, const Clock& clock,
    const metadata::Release* offline_release = nullptr);

// One TUF refresh of a device's fleet repository, trusted in the client
// directory `fleet_tuf` (which it updates), from `remote`; the document is
// downloaded into `targets_dir` (its length and hashes checked), parsed and
// checked (CheckFleetDocument). What is read and how is the follower's poll's.
// `what` names the repository in the refresh's errors. With `offline_release`
// (an import allowed that release's offline window), expired fleet metadata
// stands as ApplyFleetOfflineWindow says.
Result<VerifiedFleet> VerifyFleetRepository(const std::string& fleet_tuf,
                                            const std::string& targets_dir,
                                            metadata::RemoteRepository& remote,
                                            metadata::TufClient& image,
                                            const FleetCheckContext& context, const Clock& clock,
                                            const std::string& what,
                                            const metadata::Release* offline_release = nullptr);

// Writes `accepted` as <fleet_dir>/accepted.json (atomically, durably, 0600).
Status SaveAcceptedFleet(const std::string& fleet_dir, const AcceptedFleet& accepted);

struct FleetStatus {
  // "local" (no fleet root offered: the local apps list), "following", or
  // "holding" (a document was accepted; the last poll failed or was refused,
  // and the node keeps running what it runs).
  std::string state = "local";
  std::optional<AcceptedFleet> accepted;
  std::string last_error;         // of the last poll ("" after a success)
  int64_t last_refresh_unix = 0;  // last successful poll (0: never)
  uint64_t polls_ok = 0;
  uint64_t polls_failed = 0;
};

class FleetFollower {
 public:
  // Loads <data>/fleet/accepted.json when there is one.
  static Result<std::unique_ptr<FleetFollower>> Open(FleetFollowerOptions options,
                                                     const Clock& clock, Executor& loop,
                                                     FleetFloor floor, FleetEvents events);

  void SetCredentials(DeviceCredentials credentials) { credentials_ = std::move(credentials); }
  void Start() {
    timer_.Schedule(Duration::zero(), [this] { Poll(); });
  }
  void Stop() { timer_.Cancel(); }
  // Polls now; the backoff starts afresh.
  void PollNow();
  // Files a notice answer carried, for the next poll only.
  void Carry(CarriedFleetFiles carried) { carried_ = std::move(carried); }
  // Files an offline bundle carried (docs/bundle.md, "Fleet documents in a
  // bundle"): one refresh from them alone, no network, checked as a poll's;
  // the document accepted is handed on as a poll's is.
  // `offline_release`: as TrustedImageMetadata's.
  Status AcceptFromBundle(const CarriedFleetFiles& carried,
                          const metadata::Release* offline_release = nullptr);
  // The accepted document's releases, checked again against the image
  // repository's trusted metadata on disk (no network), while the fleet
  // metadata that listed it has not expired: what a managed node deploys
  // before its first poll answers. NotFound when no document was accepted.
  // `offline_window`: the tracker is unreachable, so expired image and fleet
  // metadata stand within the offline windows of the releases the document
  // names (docs/metadata.md), as under an import.
  Result<std::map<std::string, metadata::Release>> AcceptedReleasesOnDisk(
      bool offline_window = false) const;
  // Whether a document was ever accepted: the local apps list is then ignored.
  bool managed() const { return status_.accepted.has_value(); }
  const FleetStatus& status() const { return status_; }
  std::string fleet_dir() const { return options_.data_dir + "/fleet"; }
  // signed.version of the trusted fleet timestamp (0: none yet).
  uint64_t TrustedTimestampVersion() const;

 private:
  FleetFollower(FleetFollowerOptions options, const Clock& clock, Executor& loop, FleetFloor floor,
                FleetEvents events);
  void Poll();
  // One poll: OK with the releases to run, OK with nullopt when there is no
  // fleet root to follow, or why it failed or was refused.
  Result<std::optional<std::map<std::string, metadata::Release>>> PollOnce();
  Status TrustFleetRoot(metadata::TufClient& image);
  // Stores a verified document as the one followed; its releases.
  Result<std::map<std::string, metadata::Release>> Accept(VerifiedFleet verified);
  FleetCheckContext CheckContext() const;
  Duration NextDelay(bool succeeded);

  FleetFollowerOptions options_;
  const Clock& clock_;
  FleetFloor floor_;
  FleetEvents events_;
  TimerSlot timer_;
  std::optional<DeviceCredentials> credentials_;
  // The fleet repository's requests: one client, so that a poll reuses the
  // previous poll's connection (no new TCP and TLS handshakes).
  std::unique_ptr<http::Client> fleet_client_;
  std::optional<CarriedFleetFiles> carried_;
  FleetStatus status_;
  uint32_t failures_ = 0;
  std::mt19937_64 random_;
};

}  // namespace flotilla::node
