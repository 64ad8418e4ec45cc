#include "node/daemon/enrolment.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::node {
namespace {

Result<std::string> EnrolmentToken(const NodeConfig& config) {
  if (!config.enrolment_token.empty()) return config.enrolment_token;
  auto text = ReadTextFileBounded(config.enrolment_token_file, 4096);
  if (!text.ok()) return text.status().WithContext("enrolment_token_file");
  std::string token = text->substr(0, text->find('\n'));
  if (token.empty()) return InvalidArgument("enrolment_token_file: the first line is empty");
  return token;
}

}  // namespace

Result<DeviceCredentials> LoadCredentials(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound(path + ": not enrolled yet");
    return IOErrorFromErrno("stat " + path, errno);
  }
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied(path + " is readable by group or others (must be 0600)");
  }
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, 16 << 10));
  auto credentials = tracker::ParseDeviceCredentials(text);
  if (!credentials.ok()) return Corruption(path + ": " + credentials.status().message());
  return credentials;
}

Result<Ed25519PrivateKey> LoadOrCreateDeviceKey(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    return Ed25519PrivateKey::LoadFile(path).WithContext("device key");
  }
  if (errno != ENOENT) return IOErrorFromErrno("stat " + path, errno);
  // Stored before the tracker ever sees its public half: a power cut after
  // the tracker bound it never leaves the device without it.
  Ed25519PrivateKey key = Ed25519PrivateKey::Generate();
  RETURN_IF_ERROR(key.SaveFile(path).WithContext("store device key"));
  return key;
}

void KeyBinder::Start(const DeviceCredentials& credentials) {
  if (started_) return;
  started_ = true;
  credentials_ = credentials;
  timer_.Schedule(Duration::zero(), [this] { Attempt(); });
}

void KeyBinder::Attempt() {
  auto key = LoadOrCreateDeviceKey(layout_.device_key());
  if (!key.ok()) {
    spdlog::warn("device key: {} (the key is not bound; tried again in {} min)",
                 key.status().ToString(),
                 std::chrono::duration_cast<std::chrono::minutes>(kRetry).count());
    timer_.Schedule(kRetry, [this] { Attempt(); });
    return;
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             SystemClock::Instance().Now().time_since_epoch())
                             .count();
  tracker::TrackerClient tracker(config_.tracker_url, HttpOptionsFor(config_));
  Status bound =
      tracker.BindKey(credentials_, tracker::SignKeyBinding(config_.device_name, *key, now_ms));
  if (bound.ok()) {
    done_ = true;
    spdlog::info("device key {} bound to {}", key->public_key().Hex().substr(0, 16),
                 credentials_.device_id);
    return;
  }
  switch (bound.code()) {
    case StatusCode::kNotFound:  // a tracker before device keys: at the next enrolment, then
      spdlog::info("the tracker does not bind device keys yet: {}", bound.message());
      return;
    case StatusCode::kInvalidArgument:
    case StatusCode::kPermissionDenied:
      spdlog::warn("device key not bound: {}", bound.message());
      return;
    default:
      spdlog::debug("device key not bound yet: {}", bound.ToString());
      timer_.Schedule(kRetry, [this] { Attempt(); });
  }
}

Result<DeviceCredentials> EnsureEnrolled(const NodeConfig& config, const DataLayout& layout) {
  auto stored = LoadCredentials(layout.credentials());
  if (stored.ok() || stored.status().code() != StatusCode::kNotFound) return stored;
  ASSIGN_OR_RETURN(std::string token, EnrolmentToken(config));
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, LoadOrCreateDeviceKey(layout.device_key()));
  tracker::EnrolRequest request{
      .fleet_token = token, .name = config.device_name, .site = config.site, .tags = config.tags};
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             SystemClock::Instance().Now().time_since_epoch())
                             .count();
  tracker::SignEnrolRequest(request, key, now_ms);
  tracker::TrackerClient tracker(config.tracker_url, HttpOptionsFor(config));
  auto creds = tracker.Enrol(request);
  if (!creds.ok()) {
    // A refusal needs someone at the device or the tracker (a name taken, a
    // token expired): said in the log, which is all a device not enrolled
    // has (it cannot report). An unreachable tracker is only retried.
    if (creds.status().code() == StatusCode::kPermissionDenied ||
        creds.status().code() == StatusCode::kInvalidArgument) {
      spdlog::warn("enrolment as '{}' refused: {}", config.device_name, creds.status().message());
    }
    return creds.status().WithContext("enrol");
  }
  RETURN_IF_ERROR(
      WriteFileAtomic(layout.credentials(), tracker::DeviceCredentialsToJson(*creds).dump(), 0600)
          .WithContext("store credentials"));
  return *creds;
}

}  // namespace flotilla::node
