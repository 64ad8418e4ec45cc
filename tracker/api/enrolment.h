// Enrolment (POST /api/v1/enroll): a device trades an enrolment token for its
// identity and two secrets, and binds its key (docs/identity.md). One JSON
// form each way (docs/tracker.md), read and written here for the tracker,
// the client library and the node's stored credentials.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/ed25519.h"
#include "core/status.h"

namespace flotilla::tracker {

struct EnrolRequest {
  std::string fleet_token;  // secret
  std::string name;         // label: the device's name in the fleet
  std::string site;         // label, or empty
  // Labels the device starts with (docs/fleet.md, "The model"): taken at
  // its first enrolment only; at most kMaxEnrolTags.
  std::vector<std::string> tags;
  // The device key (docs/identity.md): its public half in hex, the time of
  // the statement and its signature in hex; all empty/0 for a device without
  // a key (a 0.1.0 node). The parser checks their shape, not the signature.
  std::string public_key;
  int64_t signed_at_ms = 0;  // unix milliseconds
  std::string signature;
};

// The bytes a device signs to enrol with its key: four lines
// "flotilla-enrol-v1", "name=N", "public_key=HEX", "signed_at_ms=T" (unix milliseconds), each
// ending in '\n'.
std::string EnrolStatement(std::string_view name, std::string_view public_key_hex,
                           int64_t signed_at_ms);

inline constexpr size_t kMaxEnrolTags = 32;

// What enrolment hands a device. The credential and passkey are secrets:
// never logged, never in a message.
struct DeviceCredentials {
  std::string device_id;
  std::string credential;    // Authorization: Bearer <credential> for reports
  std::string passkey;       // /announce/<passkey>, personalised torrents
  std::string announce_url;  // <public_url>/announce/<passkey>
};

// Fills the request's key members: `key`'s public half, `now_ms` (unix
// milliseconds) and the signature of EnrolStatement by `key`.
void SignEnrolRequest(EnrolRequest& request, const Ed25519PrivateKey& key, int64_t now_ms);

// A device's key bound by its credential (POST /api/v1/devices/<id>/key,
// docs/identity.md, "Binding a key by credential"): what a device enrolled
// without a key (by 0.1.0) sends once its node has one. The statement is
// EnrolStatement of the device's enrolled name.
struct KeyBinding {
  std::string public_key;  // 64 lower-case hex digits
  int64_t signed_at_ms = 0;
  std::string signature;  // 128 lower-case hex digits
};
KeyBinding SignKeyBinding(std::string_view name, const Ed25519PrivateKey& key, int64_t now_ms);
Result<KeyBinding> ParseKeyBinding(std::string_view body);
Json KeyBindingToJson(const KeyBinding& binding);

Result<EnrolRequest> ParseEnrolRequest(std::string_view body);
Json EnrolRequestToJson(const EnrolRequest& request);

// Checks the shape: an id of 1-64 characters, 64 lower-case hex digits for
// each secret.
Result<DeviceCredentials> ParseDeviceCredentials(std::string_view body);
Json DeviceCredentialsToJson(const DeviceCredentials& credentials);

}  // namespace flotilla::tracker
