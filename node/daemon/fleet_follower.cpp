#include "node/daemon/fleet_follower.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "core/sealed_box.h"
#include "metadata/offline_window.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"
#include "node/daemon/backoff.h"

namespace flotilla::node {
namespace {

constexpr uint64_t kMaxDocumentBytes = 1 << 20;
// A device's windows come from its groups; more than this is a broken document.
constexpr size_t kMaxWindows = 256;
constexpr uint64_t kMaxAcceptedBytes = 2 << 20;
// Base64 of a sealed box of the largest value (crypto_box_SEALBYTES = 48).
constexpr size_t kMaxSecretBoxChars = (kMaxSealedValueBytes + 48 + 2) / 3 * 4;

int64_t UnixSeconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// The image repository as the node trusts it: metadata from its trusted
// directory (verified again, no network), targets over HTTP from the tracker.
class ImageRemote final : public metadata::RemoteRepository {
 public:
  ImageRemote(const std::string& tuf_dir, std::string targets_url, http::ClientOptions options)
      : disk_(tuf_dir, ""), targets_url_(std::move(targets_url)), client_(std::move(options)) {}
  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override {
    return disk_.FetchMetadata(name, max_bytes);
  }
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override {
    return client_.FetchToFile(
        {.url = http::JoinUrl(targets_url_, url_path), .max_body_bytes = max_bytes}, dest_path);
  }

 private:
  metadata::DirectoryRemote disk_;
  std::string targets_url_;
  http::Client client_;
};

// The device's own fleet repository over HTTP, asked for with its credential
// through the follower's client (its connection reused from poll to poll).
class DeviceRemote final : public metadata::RemoteRepository {
 public:
  DeviceRemote(std::string base_url, const std::string& credential, http::Client& client)
      : base_url_(std::move(base_url)), authorization_("Bearer " + credential), client_(client) {}
  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override {
    ASSIGN_OR_RETURN(http::Response response,
                     client_.Fetch(Call("metadata/" + metadata::PercentEncode(name), max_bytes)));
    return std::move(response.body);
  }
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override {
    return client_.FetchToFile(Call("targets/" + url_path, max_bytes), dest_path);
  }

 private:
  http::Call Call(const std::string& path, uint64_t max_bytes) const {
    http::Call call{.url = http::JoinUrl(base_url_, path), .max_body_bytes = max_bytes};
    call.headers.emplace_back("Authorization", authorization_);
    return call;
  }
  std::string base_url_;
  std::string authorization_;  // a secret: never logged
  http::Client& client_;
};

bool IsAppName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && name[0] != '.' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
         });
}

// Checks that `object` holds every one of `keys`. Other members are left to
// newer nodes: a tracker may add members without stopping older nodes from
// following it; a change older nodes must not ignore raises `format`.
Status RequireMembers(const Json& object, std::initializer_list<std::string_view> keys,
                      const std::string& what) {
  if (!object.is_object()) return InvalidArgument(what + " is not an object");
  for (std::string_view key : keys) {
    if (!object.contains(key)) return InvalidArgument(what + " lacks '" + std::string(key) + "'");
  }
  return Status::Ok();
}

Json AcceptedToJson(const AcceptedFleet& a) {
  return Json{{"document", a.document_bytes},
              {"targets_version", a.targets_version},
              {"expires", metadata::FormatTufTime(WallTime(std::chrono::seconds(a.expires_unix)))},
              {"accepted_at", a.accepted_unix}};
}

Result<AcceptedFleet> AcceptedFromJson(const Json& json) {
  RETURN_IF_ERROR(RequireMembers(json, {"document", "targets_version", "expires", "accepted_at"},
                                 "accepted.json"));
  AcceptedFleet a;
  try {
    a.document_bytes = json.at("document").get<std::string>();
    a.targets_version = json.at("targets_version").get<uint64_t>();
    a.accepted_unix = json.at("accepted_at").get<int64_t>();
    ASSIGN_OR_RETURN(WallTime expires,
                     metadata::ParseTufTime(json.at("expires").get<std::string>()));
    a.expires_unix = UnixSeconds(expires);
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("accepted.json: ") + e.what());
  }
  ASSIGN_OR_RETURN(a.document, ParseFleetDocument(a.document_bytes));
  return a;
}

// Step 5 of the checks for one app's `secrets`.
Status CheckFleetSecrets(const appspec::AppSpec& spec,
                         const std::map<std::string, std::string>& secrets, const std::string& what,
                         const std::string& device_key_path) {
  if (secrets.empty()) return Status::Ok();
  auto opener = SealedBoxOpener::LoadFile(device_key_path);
  if (!opener.ok()) {
    return FailedPrecondition(what +
                              ": secrets refused: the device key: " + opener.status().message());
  }
  for (const auto& [name, box] : secrets) {
    // The name first: a box the spec does not ask for is not even opened.
    if (!appspec::DeclaresSecret(spec, name)) {
      return PermissionDenied(what + ": secret " + name.substr(0, 64) +
                              " refused: its signed spec does not declare it a secret");
    }
    auto value = opener->Open(box);
    if (!value.ok()) {
      return PermissionDenied(what + ": secret " + name + " refused: " + value.status().message() +
                              " (sealed to another key? `secret set` seals for the device's key)");
    }
    Status matches = appspec::CheckSecretValue(spec, name, *value);
    WipeString(*value);
    if (!matches.ok()) {
      return PermissionDenied(what + ": secret refused: its signed spec " + matches.message());
    }
  }
  return Status::Ok();
}

}  // namespace

Result<FleetDocument> ParseFleetDocument(std::string_view bytes) {
  ASSIGN_OR_RETURN(Json json,
                   ParseJsonStrict(bytes, {.max_bytes = kMaxDocumentBytes, .max_depth = 8}));
  RETURN_IF_ERROR(RequireMembers(json, {"apps", "device"}, "fleet document"));
  FleetDocument doc;
  try {
    if (json.contains("format")) {
      if (!json.at("format").is_number_unsigned()) {
        return InvalidArgument("fleet document: format is not an unsigned integer");
      }
      const uint64_t format = json.at("format").get<uint64_t>();
      if (format == 0 || format > kFleetDocumentFormat) {
        return InvalidArgument("fleet document: format " + std::to_string(format) +
                               " (this node reads format " + std::to_string(kFleetDocumentFormat) +
                               "; update the node)");
      }
    }
    doc.device = json.at("device").get<std::string>();
    if (!json.at("apps").is_object())
      return InvalidArgument("fleet document: apps is not an object");
    for (const auto& [name, app] : json.at("apps").items()) {
      if (!IsAppName(name)) return InvalidArgument("fleet document: bad app name");
      const std::string what = "fleet document: app " + name;
      RETURN_IF_ERROR(RequireMembers(app, {"hashes", "length", "release", "target"}, what));
      FleetAppChoice choice;
      if (!app.at("release").is_number_unsigned() || !app.at("length").is_number_unsigned()) {
        return InvalidArgument(what + ": release and length must be unsigned integers");
      }
      choice.release = app.at("release").get<uint64_t>();
      choice.target = app.at("target").get<std::string>();
      choice.length = app.at("length").get<uint64_t>();
      choice.hashes = app.at("hashes").get<std::map<std::string, std::string>>();
      if (choice.release == 0 || choice.hashes.empty()) return InvalidArgument(what + ": empty");
      if (app.contains("config")) {
        const Json& config = app.at("config");
        if (!config.is_object() || config.size() > appspec::kMaxConfigVariables) {
          return InvalidArgument(what + ": config is not an object of at most " +
                                 std::to_string(appspec::kMaxConfigVariables) + " values");
        }
        for (const auto& [key, value] : config.items()) {
          if (!value.is_string()) return InvalidArgument(what + ": config values are strings");
          choice.config.emplace(key, value.get<std::string>());
        }
      }
      if (app.contains("secrets")) {
        const Json& secrets = app.at("secrets");
        if (!secrets.is_object() || secrets.size() > appspec::kMaxConfigVariables) {
          return InvalidArgument(what + ": secrets is not an object of at most " +
                                 std::to_string(appspec::kMaxConfigVariables) + " boxes");
        }
        for (const auto& [name, box] : secrets.items()) {
          if (!box.is_string() || box.get_ref<const std::string&>().size() > kMaxSecretBoxChars) {
            return InvalidArgument(what + ": a secret is a sealed box in base64");
          }
          choice.secrets.emplace(name, box.get<std::string>());
        }
      }
      doc.apps.emplace(name, std::move(choice));
    }
    if (json.contains("windows")) {
      const Json& windows = json.at("windows");
      if (!windows.is_array() || windows.size() > kMaxWindows) {
        return InvalidArgument("fleet document: windows is not a list of at most " +
                               std::to_string(kMaxWindows));
      }
      for (const Json& window : windows) {
        auto parsed = tracker::WindowFromJson(window);
        if (!parsed.ok()) return parsed.status().WithContext("fleet document");
        doc.windows.push_back(std::move(parsed).value());
      }
    }
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("fleet document: ") + e.what());
  }
  return doc;
}

FleetFollower::FleetFollower(FleetFollowerOptions options, const Clock& clock, Executor& loop,
                             FleetFloor floor, FleetEvents events)
    : options_(std::move(options)),
      clock_(clock),
      floor_(std::move(floor)),
      events_(std::move(events)),
      timer_(loop),
      fleet_client_(std::make_unique<http::Client>(options_.http)),
      random_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()) {}

Result<std::unique_ptr<FleetFollower>> FleetFollower::Open(FleetFollowerOptions options,
                                                           const Clock& clock, Executor& loop,
                                                           FleetFloor floor, FleetEvents events) {
  std::unique_ptr<FleetFollower> follower(
      new FleetFollower(std::move(options), clock, loop, std::move(floor), std::move(events)));
  const std::string path = follower->fleet_dir() + "/accepted.json";
  if (PathExists(path)) {
    ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxAcceptedBytes));
    auto json = ParseJsonStrict(text);
    auto accepted = json.ok() ? AcceptedFromJson(*json) : Result<AcceptedFleet>(json.status());
    if (!accepted.ok()) return accepted.status().WithContext(path);
    follower->status_.accepted = std::move(*accepted);
    follower->status_.state = "holding";
  }
  return follower;
}

uint64_t FleetFollower::TrustedTimestampVersion() const {
  auto text = ReadTextFileBounded(fleet_dir() + "/tuf/timestamp.json", 1 << 20);
  if (!text.ok()) return 0;
  auto json = ParseJsonStrict(*text);
  if (!json.ok()) return 0;
  try {
    return json->at("signed").at("version").get<uint64_t>();
  } catch (const std::exception&) {
    return 0;
  }
}

void FleetFollower::PollNow() {
  failures_ = 0;
  timer_.Schedule(Duration::zero(), [this] { Poll(); });
}

void FleetFollower::Poll() {
  auto polled = PollOnce();
  ++(polled.ok() ? status_.polls_ok : status_.polls_failed);
  if (polled.ok()) {
    status_.last_refresh_unix = UnixSeconds(clock_.Now());
    status_.last_error.clear();
    status_.state = managed() ? "following" : "local";
    if (polled->has_value()) events_.choices(**polled);
  } else {
    const std::string why = polled.status().ToString();
    if (why != status_.last_error) {
      spdlog::warn("fleet metadata refused or unavailable: {}{}", why,
                   managed() ? "; the node keeps running what it runs" : "");
      events_.error("fleet: " + why);
    }
    status_.last_error = why;
    if (managed()) status_.state = "holding";
  }
  timer_.Schedule(NextDelay(polled.ok()), [this] { Poll(); });
}

Result<std::optional<std::map<std::string, metadata::Release>>> FleetFollower::PollOnce() {
  const std::string fleet_tuf = fleet_dir() + "/tuf";
  // Files a notice carried serve this poll only, whatever it comes to.
  const std::optional<CarriedFleetFiles> carried = std::exchange(carried_, std::nullopt);
  ImageRemote image_remote(options_.data_dir + "/tuf",
                           http::JoinUrl(options_.tracker_url, "targets"), options_.http);
  ASSIGN_OR_RETURN(auto image,
                   metadata::TufClient::Open(options_.data_dir + "/tuf", image_remote, clock_));
  RETURN_IF_ERROR(image->Refresh().WithContext("image repository"));
  const bool root_trusted = PathExists(fleet_tuf + "/root.json");
  if (!root_trusted) {
    auto offered = image->GetTargetInfo(kFleetRootTarget);
    if (!offered.ok() && offered.status().code() == StatusCode::kNotFound) {
      return std::optional<std::map<std::string, metadata::Release>>();  // no fleet
    }
    RETURN_IF_ERROR(offered.status());
    RETURN_IF_ERROR(CreateDirectories(fleet_dir(), 0700));
    ASSIGN_OR_RETURN(auto root_file, image->DownloadTarget(*offered, fleet_dir() + "/root-target"));
    ASSIGN_OR_RETURN(std::string root,
                     ReadTextFileBounded(root_file.path, metadata::ClientLimits{}.max_root_bytes));
    RETURN_IF_ERROR(metadata::TufClient::Initialize(fleet_tuf, root).WithContext("fleet root"));
    spdlog::info("fleet root trusted (the image repository's target {})", kFleetRootTarget);
  }
  if (!credentials_) {
    return FailedPrecondition("not enrolled yet: the fleet repository needs the device credential");
  }
  DeviceRemote network(
      http::JoinUrl(options_.tracker_url, "fleet/devices/" + credentials_->device_id + "/"),
      credentials_->credential, *fleet_client_);
  std::optional<CarriedRemote> carried_remote;
  if (carried) carried_remote.emplace(*carried, network);
  metadata::RemoteRepository& remote =
      carried_remote ? static_cast<metadata::RemoteRepository&>(*carried_remote) : network;
  ASSIGN_OR_RETURN(
      VerifiedFleet verified,
      VerifyFleetRepository(
          fleet_tuf, fleet_dir() + "/targets", remote, *image, CheckContext(), clock_,
          carried ? "fleet repository (files the notice carried)" : "fleet repository"));
  if (carried_remote) {
    spdlog::debug("fleet repository refreshed from the files the notice carried ({} fetched)",
                  carried_remote->network_fetches());
  }
  ASSIGN_OR_RETURN(auto releases, Accept(std::move(verified)));
  return std::optional(std::move(releases));
}

FleetCheckContext FleetFollower::CheckContext() const {
  return FleetCheckContext{.device_id = credentials_ ? credentials_->device_id : std::string(),
                           .floor = floor_,
                           .device_key_path = options_.data_dir + "/device-key"};
}

Result<std::map<std::string, metadata::Release>> FleetFollower::Accept(VerifiedFleet verified) {
  AcceptedFleet& accepted = verified.accepted;
  accepted.accepted_unix = UnixSeconds(clock_.Now());
  const bool changed = !status_.accepted ||
                       status_.accepted->document_bytes != accepted.document_bytes ||
                       status_.accepted->targets_version != accepted.targets_version;
  if (changed) {
    RETURN_IF_ERROR(SaveAcceptedFleet(fleet_dir(), accepted));
    std::string apps;
    for (const auto& [app, choice] : accepted.document.apps) {
      apps += (apps.empty() ? "" : ", ") + app + " " + std::to_string(choice.release);
    }
    spdlog::info("fleet document v{} accepted: {}", accepted.targets_version,
                 apps.empty() ? "no apps" : apps);
    for (const auto& window : accepted.document.windows) {
      if (!tracker::CheckWindowZone(window.zone).ok()) {
        spdlog::warn(
            "maintenance window {}: this device's zoneinfo lacks its zone, so it is "
            "evaluated as UTC (install or update tzdata)",
            tracker::WindowText(window));
      }
    }
  }
  status_.accepted = std::move(accepted);
  return std::move(verified.releases);
}

Result<std::unique_ptr<metadata::TufClient>> TrustedImageMetadata(
    const std::string& tuf_dir, metadata::RemoteRepository& remote, const Clock& clock,
    const metadata::Release* offline_release) {
  ASSIGN_OR_RETURN(auto image, metadata::TufClient::Open(tuf_dir, remote, clock));
  if (offline_release != nullptr) image->AllowOfflineWindow();
  RETURN_IF_ERROR(image->Refresh().WithContext("image repository"));
  if (offline_release != nullptr) {
    RETURN_IF_ERROR(
        metadata::ApplyOfflineWindow(*image, {offline_release}).WithContext("image repository"));
  }
  return image;
}

Status FleetFollower::AcceptFromBundle(const CarriedFleetFiles& carried,
                                       const metadata::Release* offline_release) {
  if (!credentials_) return FailedPrecondition("not enrolled: no fleet document is this device's");
  metadata::DirectoryRemote trusted_image(options_.data_dir + "/tuf", "");
  ASSIGN_OR_RETURN(auto image, TrustedImageMetadata(options_.data_dir + "/tuf", trusted_image,
                                                    clock_, offline_release));
  NoNetworkRemote no_network;
  CarriedRemote remote(carried, no_network);
  ASSIGN_OR_RETURN(
      VerifiedFleet verified,
      VerifyFleetRepository(fleet_dir() + "/tuf", fleet_dir() + "/targets", remote, *image,
                            CheckContext(), clock_, "fleet repository (files the bundle carried)",
                            offline_release));
  ASSIGN_OR_RETURN(auto releases, Accept(std::move(verified)));
  status_.state = "following";
  status_.last_error.clear();
  if (events_.choices) events_.choices(releases);
  return Status::Ok();
}

Result<std::map<std::string, metadata::Release>> FleetFollower::AcceptedReleasesOnDisk(
    bool offline_window) const {
  if (!status_.accepted) return NotFound("no fleet document accepted");
  if (!credentials_) return FailedPrecondition("not enrolled");
  metadata::DirectoryRemote trusted_image(options_.data_dir + "/tuf", "");
  ASSIGN_OR_RETURN(auto image,
                   metadata::TufClient::Open(options_.data_dir + "/tuf", trusted_image, clock_));
  if (offline_window) image->AllowOfflineWindow();
  RETURN_IF_ERROR(image->Refresh().WithContext("image repository"));
  ASSIGN_OR_RETURN(auto chosen,
                   CheckFleetDocument(status_.accepted->document, *image, CheckContext()));
  // Expiry as a poll's: the fleet metadata that listed the document, against
  // the image client's time (max(clock, floor)).
  const bool fleet_expired = UnixSeconds(image->update_start()) >= status_.accepted->expires_unix;
  if (!fleet_expired && !image->stale_since()) return chosen;
  const std::string expired =
      "the accepted fleet document's metadata expired at " +
      metadata::FormatTufTime(WallTime(std::chrono::seconds(status_.accepted->expires_unix)));
  if (!offline_window) {
    if (fleet_expired) return FailedPrecondition(expired);
    return FailedPrecondition("image metadata expired");
  }
  // Offline: every release the document names must be usable under its window.
  std::vector<const metadata::Release*> used;
  for (const auto& [app, release] : chosen) used.push_back(&release);
  if (fleet_expired) {
    for (const metadata::Release* release : used) {
      Status usable = metadata::CheckOfflineWindow(*release, image->root(), image->update_start());
      if (!usable.ok()) return FailedPrecondition(expired + "; " + std::string(usable.message()));
    }
  }
  RETURN_IF_ERROR(metadata::ApplyOfflineWindow(*image, used).WithContext("image repository"));
  return chosen;
}

Result<VerifiedFleet> VerifyFleetRepository(const std::string& fleet_tuf,
                                            const std::string& targets_dir,
                                            metadata::RemoteRepository& remote,
                                            metadata::TufClient& image,
                                            const FleetCheckContext& context, const Clock& clock,
                                            const std::string& what,
                                            const metadata::Release* offline_release) {
  ASSIGN_OR_RETURN(auto fleet, metadata::TufClient::Open(fleet_tuf, remote, clock));
  if (offline_release != nullptr) fleet->AllowOfflineWindow();
  RETURN_IF_ERROR(fleet->Refresh().WithContext(what));
  ASSIGN_OR_RETURN(auto info, fleet->GetTargetInfo(kFleetDocumentTarget).WithContext(what));
  if (info.length > kMaxDocumentBytes) return ResourceExhausted("fleet document too large");
  ASSIGN_OR_RETURN(auto got,
                   fleet->DownloadTarget(info, targets_dir).WithContext("fleet document"));
  ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(got.path, kMaxDocumentBytes));
  ASSIGN_OR_RETURN(FleetDocument document, ParseFleetDocument(bytes));
  VerifiedFleet verified;
  ASSIGN_OR_RETURN(verified.releases, CheckFleetDocument(document, image, context));
  verified.accepted.document = std::move(document);
  verified.accepted.document_bytes = std::move(bytes);
  verified.accepted.targets_version = fleet->targets()->common.version;
  verified.accepted.expires_unix = UnixSeconds(fleet->targets()->common.expires);
  if (fleet->stale_since()) {
    RETURN_IF_ERROR(ApplyFleetOfflineWindow(*fleet, image, verified.releases, *offline_release)
                        .WithContext(what));
  }
  return verified;
}

Status ApplyFleetOfflineWindow(metadata::TufClient& fleet, const metadata::TufClient& image,
                               const std::map<std::string, metadata::Release>& chosen,
                               const metadata::Release& windowed) {
  const std::string why =
      "fleet metadata expired at " + metadata::FormatTufTime(*fleet.stale_since()) + "; ";
  auto it = chosen.find(windowed.app);
  if (it == chosen.end() || it->second.version != windowed.version) {
    return FailedPrecondition(
        why + "offline it stands only for the release whose window it names, and it names " +
        (it == chosen.end() ? "no release of " + windowed.app
                            : windowed.app + " release " + std::to_string(it->second.version)) +
        ", not release " + std::to_string(windowed.version));
  }
  Status usable = metadata::CheckOfflineWindow(windowed, image.root(), fleet.update_start());
  if (!usable.ok()) return FailedPrecondition(why + std::string(usable.message()));
  return fleet.RaiseTimeFloorTo(windowed.offline_window->start);
}

Result<std::map<std::string, metadata::Release>> CheckFleetDocument(
    const FleetDocument& document, metadata::TufClient& image, const FleetCheckContext& context) {
  if (document.device != context.device_id) {
    return PermissionDenied("the fleet document is for device '" + document.device +
                            "', not this device ('" + context.device_id + "')");
  }
  std::map<std::string, metadata::Release> releases;
  for (const auto& [app, choice] : document.apps) {
    const std::string what = "app " + app + " release " + std::to_string(choice.release);
    auto signed_target = image.GetTargetInfo(choice.target);
    if (!signed_target.ok()) {
      return FailedPrecondition(what + ": the image repository signs no target " +
                                metadata::PercentEncode(choice.target) + " (" +
                                signed_target.status().message() + ")");
    }
    if (signed_target->length != choice.length || signed_target->hashes != choice.hashes) {
      return Corruption(what + ": the length or hashes of target " +
                        metadata::PercentEncode(choice.target) +
                        " differ from the image repository's");
    }
    ASSIGN_OR_RETURN(metadata::Release release,
                     metadata::ParseRelease(signed_target->custom).WithContext(what));
    if (release.app != app || release.version != choice.release ||
        choice.target != metadata::ReleaseTargetName(app, release.version)) {
      return Corruption(what + ": target " + metadata::PercentEncode(choice.target) +
                        " carries release " + std::to_string(release.version) + " of " +
                        release.app);
    }
    uint64_t floor = 0;
    if (context.floor) {
      ASSIGN_OR_RETURN(floor, context.floor(image, app).WithContext(what + ": its floor"));
    }
    if (release.version < floor) {
      return FailedPrecondition(what + " is below the floor " + std::to_string(floor) +
                                " the image repository signs for " + app);
    }
    if (!choice.config.empty() || !choice.secrets.empty()) {
      // Only the signed spec says what may be set: the document's keys are online.
      ASSIGN_OR_RETURN(appspec::AppSpec spec,
                       appspec::ParseAppSpec(release.app_spec).WithContext(what));
      Status accepted = appspec::CheckConfigValues(spec, choice.config);
      if (!accepted.ok()) {
        return PermissionDenied(what + ": configuration refused: its signed spec " +
                                accepted.message());
      }
      RETURN_IF_ERROR(CheckFleetSecrets(spec, choice.secrets, what, context.device_key_path));
    }
    releases.emplace(app, std::move(release));
  }
  return releases;
}

Status SaveAcceptedFleet(const std::string& fleet_dir, const AcceptedFleet& accepted) {
  RETURN_IF_ERROR(CreateDirectories(fleet_dir, 0700));
  return WriteFileAtomic(fleet_dir + "/accepted.json", AcceptedToJson(accepted).dump() + "\n", 0600)
      .WithContext("fleet/accepted.json");
}

Duration FleetFollower::NextDelay(bool succeeded) {
  using std::chrono::seconds;
  failures_ = succeeded ? 0 : std::min<uint32_t>(failures_ + 1, 30);
  const Duration base = succeeded ? Duration(seconds(options_.refresh_interval_s))
                                  : Backoff(seconds(5), failures_, seconds(options_.max_backoff_s));
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  return std::chrono::duration_cast<Duration>(base * jitter(random_));
}

}  // namespace flotilla::node
