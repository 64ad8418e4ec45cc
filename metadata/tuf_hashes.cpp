#include "metadata/tuf_hashes.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "core/fd.h"

namespace flotilla::metadata {
namespace {

const EVP_MD* DigestFor(std::string_view algorithm) {
  if (algorithm == "sha256") return EVP_sha256();
  if (algorithm == "sha512") return EVP_sha512();
  return nullptr;
}

// One running digest per supported algorithm a signed "hashes" object lists.
class MultiHasher {
 public:
  static Result<MultiHasher> For(std::string_view what, const HashMap& hashes, bool require_hash) {
    if (require_hash && hashes.empty())
      return Corruption(std::string(what) + " has no signed hash");
    MultiHasher hasher;
    for (const auto& [algorithm, hex] : hashes) {
      const EVP_MD* md = DigestFor(algorithm);
      if (md == nullptr) continue;  // not computed here; a supported one beside it is checked
      Context ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
      if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
        return Internal("OpenSSL could not start " + algorithm);
      }
      hasher.running_.push_back({algorithm, hex, std::move(ctx)});
    }
    if (!hashes.empty() && hasher.running_.empty()) {
      return Corruption(std::string(what) +
                        " lists no hash flotilla computes (sha256, sha512), only '" +
                        hashes.begin()->first.substr(0, 32) + "'");
    }
    return hasher;
  }

  void Update(ByteSpan data) {
    for (auto& r : running_) EVP_DigestUpdate(r.ctx.get(), data.data(), data.size());
  }

  Status Finish(std::string_view what) {
    for (auto& r : running_) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int size = 0;
      EVP_DigestFinal_ex(r.ctx.get(), digest, &size);
      const std::string actual = HexEncode(ByteSpan(digest, size));
      if (!ConstantTimeEqual(AsBytes(actual), AsBytes(r.expected_hex))) {
        return Corruption(std::string(what) + " does not match its signed " + r.algorithm);
      }
    }
    return Status::Ok();
  }

 private:
  using Context = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
  struct Running {
    std::string algorithm;
    std::string expected_hex;
    Context ctx;
  };
  std::vector<Running> running_;
};

Status CheckLength(std::string_view what, uint64_t actual, std::optional<uint64_t> length) {
  if (length && *length != actual) {
    return Corruption(std::string(what) + " is " + std::to_string(actual) +
                      " bytes, the signed length is " + std::to_string(*length));
  }
  return Status::Ok();
}

}  // namespace

bool IsSupportedHash(std::string_view algorithm) { return DigestFor(algorithm) != nullptr; }

std::string HashForFileName(const HashMap& hashes) {
  for (const char* preferred : {"sha256", "sha512"}) {
    if (auto it = hashes.find(preferred); it != hashes.end()) return it->second;
  }
  return hashes.empty() ? "" : hashes.begin()->second;
}

Result<HashMap> ComputeHashes(ByteSpan data, const std::vector<std::string>& algorithms) {
  HashMap out;
  for (const auto& algorithm : algorithms) {
    const EVP_MD* md = DigestFor(algorithm);
    if (md == nullptr) return InvalidArgument("unsupported hash algorithm '" + algorithm + "'");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &size, md, nullptr) != 1) {
      return Internal("OpenSSL could not compute " + algorithm);
    }
    out[algorithm] = HexEncode(ByteSpan(digest, size));
  }
  return out;
}

Status CheckLengthAndHashes(std::string_view what, ByteSpan data, std::optional<uint64_t> length,
                            const HashMap& hashes, bool require_hash) {
  RETURN_IF_ERROR(CheckLength(what, data.size(), length));
  ASSIGN_OR_RETURN(MultiHasher hasher, MultiHasher::For(what, hashes, require_hash));
  hasher.Update(data);
  return hasher.Finish(what);
}

Status CheckFileLengthAndHashes(std::string_view what, const std::string& path,
                                std::optional<uint64_t> length, const HashMap& hashes,
                                bool require_hash) {
  ASSIGN_OR_RETURN(MultiHasher hasher, MultiHasher::For(what, hashes, require_hash));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Corruption(path + " is not a regular file");
  RETURN_IF_ERROR(CheckLength(what, static_cast<uint64_t>(st.st_size), length));
  std::vector<uint8_t> buffer(64 << 10);
  uint64_t total = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(fd.get(), buffer).WithContext(path));
    if (n == 0) break;
    total += n;
    hasher.Update(ByteSpan(buffer.data(), n));
  }
  RETURN_IF_ERROR(CheckLength(what, total, length));
  return hasher.Finish(what);
}

}  // namespace flotilla::metadata
