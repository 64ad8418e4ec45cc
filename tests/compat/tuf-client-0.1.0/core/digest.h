// SHA-256 digests, as OCI, BitTorrent v2 and TUF use them.
//
// Text form: "sha256:" followed by 64 lower-case hex digits (OCI's form).
// The hasher is OpenSSL's libcrypto SHA-256, which uses the CPU's SHA
// extensions (x86 SHA-NI, ARMv8 crypto) where present; see docs/core.md.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla {

class Digest {
 public:
  static constexpr size_t kSize = 32;
  static constexpr std::string_view kPrefix = "sha256:";

  Digest() = default;  // all zero
  explicit Digest(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // Parses "sha256:<64 hex>"; upper-case hex is refused so that text forms are unique.
  static Result<Digest> Parse(std::string_view text);
  // Parses 64 lower-case hex digits without the prefix (TUF's "hashes" form).
  static Result<Digest> ParseHex(std::string_view hex);
  static Result<Digest> FromBytes(ByteSpan bytes);

  // SHA-256 of `data` in one call.
  static Digest Of(ByteSpan data);
  static Digest Of(std::string_view data) { return Of(AsBytes(data)); }

  std::string ToString() const;  // "sha256:<hex>"
  std::string Hex() const;       // "<hex>"
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

// Streaming SHA-256. Not thread-safe; one hasher per stream.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(Sha256Hasher&&) noexcept;
  Sha256Hasher& operator=(Sha256Hasher&&) noexcept;

  void Update(ByteSpan data);
  void Update(std::string_view data) { Update(AsBytes(data)); }
  uint64_t bytes_hashed() const { return bytes_hashed_; }

  // Returns the digest of everything passed to Update and resets the hasher.
  Digest Finish();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
  uint64_t bytes_hashed_ = 0;
};

// Hashes a whole file with bounded memory.
Result<Digest> HashFile(const std::string& path);

}  // namespace flotilla

template <>
struct std::hash<flotilla::Digest> {
  size_t operator()(const flotilla::Digest& d) const noexcept {
    size_t h;
    static_assert(sizeof(h) <= flotilla::Digest::kSize);
    std::memcpy(&h, d.bytes().data(), sizeof(h));
    return h;
  }
};
