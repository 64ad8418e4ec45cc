// Ed25519 keys, signatures and key files (libsodium).
//
// A private key file holds exactly the 32-byte seed, nothing else, and is
// written with mode 0600; loading refuses a file that group or others can
// read, and refuses a seed whose public half does not match the public key
// the caller expects (a swapped or corrupted key file must not sign).
// Verification is libsodium's: it rejects non-canonical signatures (S >= L)
// and small-order public keys and R values.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla {

struct Ed25519PublicKey {
  static constexpr size_t kSize = 32;
  std::array<uint8_t, kSize> bytes{};

  static Result<Ed25519PublicKey> FromBytes(ByteSpan bytes);
  static Result<Ed25519PublicKey> FromHex(std::string_view hex);
  std::string Hex() const { return HexEncode(bytes); }
  friend bool operator==(const Ed25519PublicKey&, const Ed25519PublicKey&) = default;
};

using Ed25519Signature = std::array<uint8_t, 64>;

// Returns OK only for a valid signature of `message` by `key`.
Status VerifyEd25519(const Ed25519PublicKey& key, ByteSpan message, ByteSpan signature);

// A private key. Its seed is wiped from memory on destruction and never printed.
class Ed25519PrivateKey {
 public:
  static constexpr size_t kSeedSize = 32;

  static Ed25519PrivateKey Generate();
  static Result<Ed25519PrivateKey> FromSeed(ByteSpan seed);

  // Loads a key file (see above). With `expected`, the derived public key must equal it.
  static Result<Ed25519PrivateKey> LoadFile(const std::string& path,
                                            const std::optional<Ed25519PublicKey>& expected = {});
  // Writes the seed atomically with mode 0600; refuses to replace an existing file.
  Status SaveFile(const std::string& path) const;

  ~Ed25519PrivateKey();
  Ed25519PrivateKey(const Ed25519PrivateKey&);
  Ed25519PrivateKey& operator=(const Ed25519PrivateKey&);

  const Ed25519PublicKey& public_key() const { return public_key_; }
  Ed25519Signature Sign(ByteSpan message) const;

 private:
  Ed25519PrivateKey() = default;
  std::array<uint8_t, 64> secret_{};  // libsodium form: seed || public key
  Ed25519PublicKey public_key_;
};

}  // namespace flotilla
