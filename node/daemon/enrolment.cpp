#include "node/daemon/enrolment.h"

#include <sys/stat.h>

#include <cerrno>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "node/daemon/http_call.h"

namespace flotilla::node {
namespace {

bool IsHex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

Result<DeviceCredentials> ParseCredentials(std::string_view text, std::string_view what) {
  auto json = ParseJsonStrict(text, JsonLimits{16 << 10, 4});
  if (!json.ok() || !json->is_object())
    return Corruption(std::string(what) + ": not a JSON object");
  DeviceCredentials c;
  try {
    c.device_id = json->at("device_id").get<std::string>();
    c.credential = json->at("credential").get<std::string>();
    c.passkey = json->at("passkey").get<std::string>();
    c.announce_url = json->at("announce_url").get<std::string>();
  } catch (const std::exception&) {
    return Corruption(std::string(what) + ": missing or malformed members");
  }
  if (c.device_id.empty() || c.device_id.size() > 64 || !IsHex64(c.credential) ||
      !IsHex64(c.passkey)) {
    return Corruption(std::string(what) + ": malformed identity");
  }
  return c;
}

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
  return ParseCredentials(text, path);
}

Result<DeviceCredentials> EnsureEnrolled(const NodeConfig& config, const DataLayout& layout) {
  auto stored = LoadCredentials(layout.credentials());
  if (stored.ok() || stored.status().code() != StatusCode::kNotFound) return stored;
  ASSIGN_OR_RETURN(std::string token, EnrolmentToken(config));
  Json request = {{"fleet_token", token}, {"name", config.device_name}};
  if (!config.site.empty()) request["site"] = config.site;
  HttpCall call;
  call.method = "POST";
  call.url = config.tracker_url + "/api/v1/enroll";
  call.body = request.dump();
  call.ca_file = config.tls_ca_file;
  call.max_body_bytes = 16 << 10;
  auto answer = HttpCallText(call);
  if (!answer.ok()) return answer.status().WithContext("enrol");
  ASSIGN_OR_RETURN(DeviceCredentials creds, ParseCredentials(*answer, "enrol answer"));
  Json stored_json = {{"device_id", creds.device_id},
                      {"credential", creds.credential},
                      {"passkey", creds.passkey},
                      {"announce_url", creds.announce_url}};
  RETURN_IF_ERROR(WriteFileAtomic(layout.credentials(), stored_json.dump(), 0600)
                      .WithContext("store credentials"));
  return creds;
}

}  // namespace flotilla::node
