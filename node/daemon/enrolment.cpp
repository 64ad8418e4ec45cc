#include "node/daemon/enrolment.h"

#include <sys/stat.h>

#include <cerrno>

#include "core/canonical_json.h"
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

Result<DeviceCredentials> EnsureEnrolled(const NodeConfig& config, const DataLayout& layout) {
  auto stored = LoadCredentials(layout.credentials());
  if (stored.ok() || stored.status().code() != StatusCode::kNotFound) return stored;
  ASSIGN_OR_RETURN(std::string token, EnrolmentToken(config));
  tracker::TrackerClient tracker(config.tracker_url, HttpOptionsFor(config));
  auto creds = tracker.Enrol(
      {.fleet_token = token, .name = config.device_name, .site = config.site, .tags = config.tags});
  if (!creds.ok()) return creds.status().WithContext("enrol");
  RETURN_IF_ERROR(
      WriteFileAtomic(layout.credentials(), tracker::DeviceCredentialsToJson(*creds).dump(), 0600)
          .WithContext("store credentials"));
  return *creds;
}

}  // namespace flotilla::node
