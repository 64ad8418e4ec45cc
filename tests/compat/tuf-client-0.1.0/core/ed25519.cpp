#include "core/ed25519.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "core/file_io.h"

namespace flotilla {
namespace {

void EnsureSodium() {
  static const bool ready = [] {
    if (sodium_init() < 0) std::abort();
    return true;
  }();
  (void)ready;
}

}  // namespace

Result<Ed25519PublicKey> Ed25519PublicKey::FromBytes(ByteSpan bytes) {
  if (bytes.size() != kSize) {
    return InvalidArgument("an Ed25519 public key is 32 bytes, got " +
                           std::to_string(bytes.size()));
  }
  Ed25519PublicKey key;
  std::copy(bytes.begin(), bytes.end(), key.bytes.begin());
  return key;
}

Result<Ed25519PublicKey> Ed25519PublicKey::FromHex(std::string_view hex) {
  ASSIGN_OR_RETURN(Bytes raw, HexDecode(hex));
  return FromBytes(raw);
}

Status VerifyEd25519(const Ed25519PublicKey& key, ByteSpan message, ByteSpan signature) {
  EnsureSodium();
  if (signature.size() != crypto_sign_BYTES) {
    return Corruption("an Ed25519 signature is 64 bytes, got " + std::to_string(signature.size()));
  }
  if (crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                  key.bytes.data()) != 0) {
    return Corruption("Ed25519 signature does not verify with key " + key.Hex().substr(0, 16));
  }
  return Status::Ok();
}

Ed25519PrivateKey Ed25519PrivateKey::Generate() {
  EnsureSodium();
  std::array<uint8_t, kSeedSize> seed;
  randombytes_buf(seed.data(), seed.size());
  auto key = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return std::move(key).value();
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(ByteSpan seed) {
  EnsureSodium();
  if (seed.size() != kSeedSize) {
    return InvalidArgument("an Ed25519 seed is 32 bytes, got " + std::to_string(seed.size()));
  }
  Ed25519PrivateKey key;
  crypto_sign_seed_keypair(key.public_key_.bytes.data(), key.secret_.data(), seed.data());
  return key;
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::LoadFile(
    const std::string& path, const std::optional<Ed25519PublicKey>& expected) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IOErrorFromErrno("key file " + path, errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    return PermissionDenied("key file " + path + " is readable by group or others (mode " + mode +
                            "); run chmod 600 on it");
  }
  ASSIGN_OR_RETURN(Bytes seed, ReadFileBounded(path, 4096));
  if (seed.size() != kSeedSize) {
    sodium_memzero(seed.data(), seed.size());
    return InvalidArgument("key file " + path + " must hold exactly the 32-byte seed, it holds " +
                           std::to_string(seed.size()) + " bytes");
  }
  auto key = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  if (!key.ok()) return key.status();
  if (expected && !(key->public_key() == *expected)) {
    return PermissionDenied("key file " + path + " holds the key " +
                            key->public_key().Hex().substr(0, 16) + "..., not the expected " +
                            expected->Hex().substr(0, 16) + "...");
  }
  return key;
}

Status Ed25519PrivateKey::SaveFile(const std::string& path) const {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return AlreadyExists("key file " + path + " exists; refusing to overwrite a key");
  }
  return WriteFileAtomic(path, ByteSpan(secret_.data(), kSeedSize), 0600);
}

Ed25519PrivateKey::~Ed25519PrivateKey() { sodium_memzero(secret_.data(), secret_.size()); }
Ed25519PrivateKey::Ed25519PrivateKey(const Ed25519PrivateKey&) = default;
Ed25519PrivateKey& Ed25519PrivateKey::operator=(const Ed25519PrivateKey&) = default;

Ed25519Signature Ed25519PrivateKey::Sign(ByteSpan message) const {
  Ed25519Signature signature;
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret_.data());
  return signature;
}

}  // namespace flotilla
