// Values sealed to a device's Ed25519 key (docs/config.md, "Secrets"):
// libsodium's crypto_box_seal to the key's X25519 form, in base64 (the
// fleet document's `secrets` member and the tracker's secret_boxes table).
// The sealer uses an ephemeral key: only the holder of the device key opens
// a box, the sealer included.
#pragma once

#include <string>
#include <string_view>

#include "core/ed25519.h"
#include "core/status.h"

namespace flotilla {

// The largest value sealed (a configuration value's bound, with room).
inline constexpr size_t kMaxSealedValueBytes = 8192;

// The base64 (RFC 4648, padded) sealed box of `value` for `key`.
// InvalidArgument for a key with no X25519 form (small order) or a value
// over kMaxSealedValueBytes.
Result<std::string> SealToKey(const Ed25519PublicKey& key, std::string_view value);

// The value of `box` (SealToKey's form) opened with `key`. Corruption when
// it is not base64 or does not open with this key (sealed to another one,
// or altered); the message never holds box or value bytes. The caller wipes
// the value when done (sodium_memzero).
Result<std::string> OpenSealedBox(const Ed25519PrivateKey& key, std::string_view box);

// Overwrites `value`'s bytes (a clear secret leaving scope).
void WipeString(std::string& value);

}  // namespace flotilla
