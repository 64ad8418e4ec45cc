// TUF keys and signatures in the three schemes TUF 1.0 defines:
//
//   keytype                          scheme               keyval.public
//   "ed25519"                        "ed25519"            64 hex digits (libsodium)
//   "ecdsa" or "ecdsa-sha2-nistp256" "ecdsa-sha2-nistp256" PEM SubjectPublicKeyInfo, P-256
//   "rsa"                            "rsassa-pss-sha256"  PEM SubjectPublicKeyInfo, >= 2048 bits
//
// ("ecdsa" is what python-securesystemslib writes, "ecdsa-sha2-nistp256" what
// the specification's text names; both are read.) ECDSA signatures are DER
// (r, s) over SHA-256, as securesystemslib and OpenSSL produce them; RSA-PSS
// signatures use SHA-256 and MGF1-SHA-256, any salt length on verification
// (securesystemslib signs with the digest length, OpenSSL's default is the
// maximum), the digest length when flotilla signs. The key id is the SHA-256
// of the canonical JSON of the key object exactly as it appears, and a key
// listed under any other id is refused.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/ed25519.h"
#include "core/status.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace flotilla::metadata {

enum class KeyScheme { kEd25519, kEcdsaSha2Nistp256, kRsassaPssSha256 };

// "ed25519", "ecdsa-sha2-nistp256", "rsassa-pss-sha256".
std::string_view SchemeName(KeyScheme scheme);

struct TufKey {
  std::string keyid;
  KeyScheme scheme = KeyScheme::kEd25519;
  // What makes two keys the same key: the 32-byte Ed25519 key, or the DER
  // SubjectPublicKeyInfo of an ECDSA or RSA key (points uncompressed).
  std::string identity;
  Json json;                          // the key object exactly as it appeared (or as it was built)
  std::shared_ptr<evp_pkey_st> pkey;  // ECDSA and RSA keys, parsed once
};

// The key object and key id of an Ed25519 public key.
TufKey MakeTufKey(const Ed25519PublicKey& key);

// A public key file's text: an Ed25519 key in 64 hex digits (keygen's .pub),
// or a PEM SubjectPublicKeyInfo of an ECDSA P-256 or RSA (>= 2048 bits) key.
Result<TufKey> ParsePublicKeyText(std::string_view text);

// Validates a key object (type, scheme, public key) and that `keyid` is the
// SHA-256 of its canonical JSON.
Result<TufKey> ParseTufKey(std::string_view keyid, const Json& key_json);

// OK only when `signature` is `key`'s valid signature of `message`.
Status VerifyTufSignature(const TufKey& key, ByteSpan message, ByteSpan signature);

// A private key that signs metadata, in any of the three schemes. Private
// material is never printed.
class TufSigner {
 public:
  static TufSigner FromEd25519(const Ed25519PrivateKey& key);
  // A fresh key: P-256 for ECDSA, 3072 bits for RSA.
  static Result<TufSigner> Generate(KeyScheme scheme);
  // A PEM private key (PKCS#8 or traditional): P-256 signs ECDSA, RSA signs RSA-PSS.
  static Result<TufSigner> FromPrivatePem(std::string_view pem);
  // A key file: a PEM private key as above, else flotilla's Ed25519 seed file
  // (keygen; mode 0600 checked by Ed25519PrivateKey::LoadFile).
  static Result<TufSigner> LoadFile(const std::string& path);

  const TufKey& key() const { return key_; }
  Result<Bytes> Sign(ByteSpan message) const;

 private:
  TufKey key_;
  std::optional<Ed25519PrivateKey> ed25519_;
  std::shared_ptr<evp_pkey_st> pkey_;
};

}  // namespace flotilla::metadata
