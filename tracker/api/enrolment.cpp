#include "tracker/api/enrolment.h"

#include <algorithm>

#include "core/json_object_reader.h"
#include "tracker/api/labels.h"

namespace flotilla::tracker {
namespace {

bool IsHex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool IsHex(const std::string& s, size_t size) {
  return s.size() == size && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string EnrolStatement(std::string_view name, std::string_view public_key_hex,
                           int64_t signed_at_ms) {
  return "flotilla-enrol-v1\nname=" + std::string(name) +
         "\npublic_key=" + std::string(public_key_hex) +
         "\nsigned_at_ms=" + std::to_string(signed_at_ms) + "\n";
}

void SignEnrolRequest(EnrolRequest& request, const Ed25519PrivateKey& key, int64_t now_ms) {
  request.public_key = key.public_key().Hex();
  request.signed_at_ms = now_ms;
  const std::string statement = EnrolStatement(request.name, request.public_key, now_ms);
  request.signature = HexEncode(key.Sign(AsBytes(statement)));
}

KeyBinding SignKeyBinding(std::string_view name, const Ed25519PrivateKey& key, int64_t now_ms) {
  KeyBinding binding{.public_key = key.public_key().Hex(), .signed_at_ms = now_ms};
  const std::string statement = EnrolStatement(name, binding.public_key, now_ms);
  binding.signature = HexEncode(key.Sign(AsBytes(statement)));
  return binding;
}

Result<KeyBinding> ParseKeyBinding(std::string_view body) {
  ASSIGN_OR_RETURN(Json json, ParseJsonStrict(body, JsonLimits{.max_bytes = 1024, .max_depth = 2}));
  JsonObjectReader r(json, "");
  KeyBinding binding;
  r.Require({"public_key", "signed_at_ms", "signature"});
  r.String("public_key", binding.public_key);
  r.Int("signed_at_ms", binding.signed_at_ms, 1);
  r.String("signature", binding.signature);
  r.Check(IsHex(binding.public_key, 64), "public_key", "must be 64 lower-case hex digits");
  r.Check(IsHex(binding.signature, 128), "signature", "must be 128 lower-case hex digits");
  RETURN_IF_ERROR(r.Finish());
  return binding;
}

Json KeyBindingToJson(const KeyBinding& binding) {
  return {{"public_key", binding.public_key},
          {"signed_at_ms", binding.signed_at_ms},
          {"signature", binding.signature}};
}

Result<EnrolRequest> ParseEnrolRequest(std::string_view body) {
  ASSIGN_OR_RETURN(Json json, ParseJsonStrict(body, JsonLimits{.max_bytes = 4096, .max_depth = 2}));
  JsonObjectReader r(json, "");
  EnrolRequest request;
  r.Require({"fleet_token", "name"});
  r.String("fleet_token", request.fleet_token);
  r.String("name", request.name);
  r.String("site", request.site);
  r.Strings("tags", request.tags);
  r.String("public_key", request.public_key);
  r.Int("signed_at_ms", request.signed_at_ms, 0);
  r.String("signature", request.signature);
  r.Check(request.public_key.empty() || IsHex(request.public_key, 64), "public_key",
          "must be 64 lower-case hex digits");
  r.Check(request.signature.empty() || IsHex(request.signature, 128), "signature",
          "must be 128 lower-case hex digits");
  r.Check(request.public_key.empty() == request.signature.empty() &&
              request.public_key.empty() == (request.signed_at_ms == 0),
          "public_key", "public_key, signed_at_ms and signature go together");
  r.Check(!request.fleet_token.empty(), "fleet_token", "is required");
  r.Check(IsValidLabel(request.name), "name", "must be 1-64 of [A-Za-z0-9._-]");
  r.Check(request.site.empty() || IsValidLabel(request.site), "site",
          "must be 1-64 of [A-Za-z0-9._-]");
  r.Check(request.tags.size() <= kMaxEnrolTags, "tags",
          "at most " + std::to_string(kMaxEnrolTags) + " tags");
  r.Check(std::all_of(request.tags.begin(), request.tags.end(), IsValidLabel), "tags",
          "each must be 1-64 of [A-Za-z0-9._-]");
  RETURN_IF_ERROR(r.Finish());
  return request;
}

Json EnrolRequestToJson(const EnrolRequest& request) {
  Json json = {{"fleet_token", request.fleet_token}, {"name", request.name}};
  if (!request.site.empty()) json["site"] = request.site;
  if (!request.tags.empty()) json["tags"] = request.tags;
  if (!request.public_key.empty()) {
    json["public_key"] = request.public_key;
    json["signed_at_ms"] = request.signed_at_ms;
    json["signature"] = request.signature;
  }
  return json;
}

Result<DeviceCredentials> ParseDeviceCredentials(std::string_view body) {
  ASSIGN_OR_RETURN(Json json,
                   ParseJsonStrict(body, JsonLimits{.max_bytes = 16 << 10, .max_depth = 2}));
  JsonObjectReader r(json, "");
  DeviceCredentials c;
  r.Require({"device_id", "credential", "passkey", "announce_url"});
  r.String("device_id", c.device_id);
  r.String("credential", c.credential);
  r.String("passkey", c.passkey);
  r.String("announce_url", c.announce_url);
  r.Check(!c.device_id.empty() && c.device_id.size() <= 64, "device_id", "must be 1-64 characters");
  r.Check(IsHex64(c.credential), "credential", "must be 64 lower-case hex digits");
  r.Check(IsHex64(c.passkey), "passkey", "must be 64 lower-case hex digits");
  RETURN_IF_ERROR(r.Finish());
  return c;
}

Json DeviceCredentialsToJson(const DeviceCredentials& c) {
  return Json{{"device_id", c.device_id},
              {"credential", c.credential},
              {"passkey", c.passkey},
              {"announce_url", c.announce_url}};
}

}  // namespace flotilla::tracker
