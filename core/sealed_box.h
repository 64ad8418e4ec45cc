// Values sealed to a device's Ed25519 key (docs/config.md, "Secrets"):
// libsodium's crypto_box_seal to the key's X25519 form, in base64 (the
// fleet document's `secrets` member and the tracker's secret_boxes table).
// The sealer uses an ephemeral key: only the holder of the device key opens
// a box, the sealer included.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/ed25519.h"
#include "core/status.h"

namespace flotilla {

// The largest value sealed (a configuration value's bound, with room).
inline constexpr size_t kMaxSealedValueBytes = 8192;

// The base64 (RFC 4648, padded) sealed box of `value` for `key`.
// InvalidArgument for a key with no X25519 form (small order) or a value
// over kMaxSealedValueBytes.
Result<std::string> SealToKey(const Ed25519PublicKey& key, std::string_view value);

// What opens the boxes sealed to one Ed25519 key: the X25519 form of its
// seed (an Ed25519 key file's 32 bytes, core/ed25519.h). Wiped from memory
// on destruction, never printed.
class SealedBoxOpener {
 public:
  static Result<SealedBoxOpener> FromSeed(ByteSpan seed);
  // An Ed25519 key file (Ed25519PrivateKey::LoadFile's checks: mode 0600,
  // exactly the seed).
  static Result<SealedBoxOpener> LoadFile(const std::string& path);

  ~SealedBoxOpener();
  SealedBoxOpener(const SealedBoxOpener&);
  SealedBoxOpener& operator=(const SealedBoxOpener&);

  const Ed25519PublicKey& public_key() const { return public_key_; }

  // The value of `box` (SealToKey's form). Corruption when it is not
  // base64 or does not open with this key (sealed to another one, or
  // altered); the message never holds box or value bytes. The caller wipes
  // the value when done (WipeString).
  Result<std::string> Open(std::string_view box) const;

 private:
  SealedBoxOpener() = default;
  Ed25519PublicKey public_key_;
  std::array<uint8_t, 32> x25519_public_{};
  std::array<uint8_t, 32> x25519_secret_{};
};

// Overwrites `value`'s bytes (a clear secret leaving scope) and empties it.
void WipeString(std::string& value);

}  // namespace flotilla
