#include "core/sealed_box.h"

#include <sodium.h>

#include <vector>

#include "core/file_io.h"

namespace flotilla {
namespace {

constexpr int kBase64Variant = sodium_base64_VARIANT_ORIGINAL;

bool SodiumReady() { return sodium_init() >= 0; }

}  // namespace

Result<std::string> SealToKey(const Ed25519PublicKey& key, std::string_view value) {
  if (!SodiumReady()) return Internal("libsodium did not initialise");
  if (value.size() > kMaxSealedValueBytes) {
    return InvalidArgument("a sealed value is at most " + std::to_string(kMaxSealedValueBytes) +
                           " bytes");
  }
  std::array<uint8_t, crypto_box_PUBLICKEYBYTES> x25519{};
  if (crypto_sign_ed25519_pk_to_curve25519(x25519.data(), key.bytes.data()) != 0) {
    return InvalidArgument("key " + key.Hex().substr(0, 16) + "... has no X25519 form");
  }
  std::vector<uint8_t> box(crypto_box_SEALBYTES + value.size());
  crypto_box_seal(box.data(), reinterpret_cast<const uint8_t*>(value.data()), value.size(),
                  x25519.data());
  std::string text(sodium_base64_encoded_len(box.size(), kBase64Variant), '\0');
  sodium_bin2base64(text.data(), text.size(), box.data(), box.size(), kBase64Variant);
  text.pop_back();  // the terminating NUL
  return text;
}

Result<SealedBoxOpener> SealedBoxOpener::FromSeed(ByteSpan seed) {
  if (!SodiumReady()) return Internal("libsodium did not initialise");
  if (seed.size() != crypto_sign_SEEDBYTES) {
    return InvalidArgument("an Ed25519 seed is 32 bytes, got " + std::to_string(seed.size()));
  }
  SealedBoxOpener opener;
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> ed25519_secret{};
  crypto_sign_seed_keypair(opener.public_key_.bytes.data(), ed25519_secret.data(), seed.data());
  const bool converted = crypto_sign_ed25519_sk_to_curve25519(opener.x25519_secret_.data(),
                                                              ed25519_secret.data()) == 0 &&
                         crypto_sign_ed25519_pk_to_curve25519(opener.x25519_public_.data(),
                                                              opener.public_key_.bytes.data()) == 0;
  sodium_memzero(ed25519_secret.data(), ed25519_secret.size());
  if (!converted) return InvalidArgument("this Ed25519 key has no X25519 form");
  return opener;
}

Result<SealedBoxOpener> SealedBoxOpener::LoadFile(const std::string& path) {
  // The key file's checks (mode, size) are Ed25519PrivateKey's; the seed is
  // read again only once they passed.
  ASSIGN_OR_RETURN(const Ed25519PrivateKey checked, Ed25519PrivateKey::LoadFile(path));
  ASSIGN_OR_RETURN(Bytes seed, ReadFileBounded(path, crypto_sign_SEEDBYTES));
  auto opener = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  if (opener.ok() && !(opener->public_key() == checked.public_key())) {
    return Corruption("key file " + path + " changed while read");
  }
  return opener;
}

SealedBoxOpener::~SealedBoxOpener() {
  sodium_memzero(x25519_secret_.data(), x25519_secret_.size());
}
SealedBoxOpener::SealedBoxOpener(const SealedBoxOpener&) = default;
SealedBoxOpener& SealedBoxOpener::operator=(const SealedBoxOpener&) = default;

Result<std::string> SealedBoxOpener::Open(std::string_view box) const {
  const size_t max_box = crypto_box_SEALBYTES + kMaxSealedValueBytes;
  if (box.size() > (max_box + 2) / 3 * 4) return Corruption("a sealed box is too long");
  std::vector<uint8_t> raw(box.size());
  size_t raw_size = 0;
  const char* end = nullptr;
  if (sodium_base642bin(raw.data(), raw.size(), box.data(), box.size(), nullptr, &raw_size, &end,
                        kBase64Variant) != 0 ||
      end != box.data() + box.size()) {
    return Corruption("a sealed box is not base64");
  }
  if (raw_size < crypto_box_SEALBYTES) return Corruption("a sealed box is too short");
  std::string value(raw_size - crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal_open(reinterpret_cast<uint8_t*>(value.data()), raw.data(), raw_size,
                           x25519_public_.data(), x25519_secret_.data()) != 0) {
    WipeString(value);
    return Corruption("a sealed box does not open with this device's key (sealed to another key)");
  }
  return value;
}

void WipeString(std::string& value) {
  if (!value.empty()) sodium_memzero(value.data(), value.size());
  value.clear();
}

}  // namespace flotilla
