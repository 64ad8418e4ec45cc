#include "metadata/tuf_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <array>
#include <memory>
#include <optional>

#include "core/digest.h"
#include "core/enum_names.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"

namespace flotilla::metadata {
namespace {

constexpr size_t kMaxPemBytes = 16 << 10;
constexpr int kMinRsaBits = 2048;
constexpr std::string_view kPemPublicHeader = "-----BEGIN PUBLIC KEY-----";

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

PkeyPtr Own(EVP_PKEY* key) { return PkeyPtr(key, EVP_PKEY_free); }

// Reads what `write` puts into a memory BIO.
template <typename Write>
Result<std::string> BioText(Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || write(bio.get()) != 1) return Internal("OpenSSL could not encode a key");
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

Result<KeyScheme> SchemeOf(std::string_view keytype, std::string_view scheme) {
  if (keytype == "ed25519" && scheme == "ed25519") return KeyScheme::kEd25519;
  if ((keytype == "ecdsa" || keytype == "ecdsa-sha2-nistp256") && scheme == "ecdsa-sha2-nistp256") {
    return KeyScheme::kEcdsaSha2Nistp256;
  }
  if (keytype == "rsa" && scheme == "rsassa-pss-sha256") return KeyScheme::kRsassaPssSha256;
  return InvalidArgument(
      "unsupported key type '" + std::string(keytype.substr(0, 32)) + "' with scheme '" +
      std::string(scheme.substr(0, 32)) +
      "' (flotilla supports ed25519, ecdsa-sha2-nistp256 and rsassa-pss-sha256)");
}

// A key of the right algorithm and size for `scheme`.
Status CheckKeyFitsScheme(EVP_PKEY* key, KeyScheme scheme) {
  if (scheme == KeyScheme::kEcdsaSha2Nistp256) {
    char group[32] = {};
    size_t length = 0;
    if (!EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_group_name(key, group, sizeof group, &length) != 1 ||
        std::string_view(group, length) != "prime256v1") {
      return InvalidArgument("an ecdsa-sha2-nistp256 key must be an EC key on curve P-256");
    }
    return Status::Ok();
  }
  if (!EVP_PKEY_is_a(key, "RSA")) return InvalidArgument("an rsassa-pss-sha256 key must be RSA");
  if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
    return InvalidArgument("RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) +
                           " bits; TUF requires at least 2048");
  }
  return Status::Ok();
}

// The DER SubjectPublicKeyInfo, EC points uncompressed so that one key has one identity.
Result<std::string> KeyIdentity(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) {
    EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                   OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED);
  }
  unsigned char* der = nullptr;
  int length = i2d_PUBKEY(key, &der);
  if (length <= 0) return Internal("OpenSSL could not encode a public key");
  std::string identity(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return identity;
}

Result<PkeyPtr> ReadPublicPem(std::string_view pem, KeyScheme scheme) {
  if (pem.size() > kMaxPemBytes || !pem.starts_with(kPemPublicHeader)) {
    return InvalidArgument(std::string(SchemeName(scheme)) +
                           " keyval.public must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  PkeyPtr key = Own(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!key) return InvalidArgument("keyval.public is not a readable PEM public key");
  RETURN_IF_ERROR(CheckKeyFitsScheme(key.get(), scheme));
  return key;
}

// An Ed25519 SubjectPublicKeyInfo (openssl genpkey -algorithm ed25519), or
// nothing when `pem` holds another kind of key.
std::optional<Ed25519PublicKey> ReadEd25519PublicPem(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return std::nullopt;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  PkeyPtr key = Own(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  std::array<uint8_t, Ed25519PublicKey::kSize> raw{};
  size_t length = raw.size();
  const bool read = key && EVP_PKEY_is_a(key.get(), "ED25519") &&
                    EVP_PKEY_get_raw_public_key(key.get(), raw.data(), &length) == 1 &&
                    length == raw.size();
  ERR_clear_error();
  if (!read) return std::nullopt;
  auto parsed = Ed25519PublicKey::FromBytes(ByteSpan(raw.data(), raw.size()));
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

// Configures a digest-sign or digest-verify context for `scheme` (SHA-256; PSS for RSA).
Status SetUpContext(EVP_PKEY_CTX* pctx, KeyScheme scheme, int salt_length) {
  if (scheme != KeyScheme::kRsassaPssSha256) return Status::Ok();
  if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt_length) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1) {
    return Internal("OpenSSL could not set up RSA-PSS");
  }
  return Status::Ok();
}

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

Result<TufKey> KeyFromPkey(PkeyPtr pkey, KeyScheme scheme) {
  TufKey key;
  key.scheme = scheme;
  ASSIGN_OR_RETURN(key.identity, KeyIdentity(pkey.get()));
  ASSIGN_OR_RETURN(std::string pem,
                   BioText([&](BIO* bio) { return PEM_write_bio_PUBKEY(bio, pkey.get()); }));
  key.json = Json{{"keytype", scheme == KeyScheme::kRsassaPssSha256 ? "rsa" : "ecdsa"},
                  {"scheme", std::string(SchemeName(scheme))},
                  {"keyval", {{"public", pem}}}};
  ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(key.json));
  key.keyid = Digest::Of(canonical).Hex();
  key.pkey = std::move(pkey);
  return key;
}

}  // namespace

constexpr EnumName<KeyScheme> kSchemeNames[] = {
    {KeyScheme::kEd25519, "ed25519"},
    {KeyScheme::kEcdsaSha2Nistp256, "ecdsa-sha2-nistp256"},
    {KeyScheme::kRsassaPssSha256, "rsassa-pss-sha256"}};

std::string_view SchemeName(KeyScheme scheme) { return NameOf(kSchemeNames, scheme); }

TufKey MakeTufKey(const Ed25519PublicKey& key) {
  TufKey out;
  out.identity.assign(key.bytes.begin(), key.bytes.end());
  out.json =
      Json{{"keytype", "ed25519"}, {"scheme", "ed25519"}, {"keyval", {{"public", key.Hex()}}}};
  out.keyid = Digest::Of(CanonicalJson(out.json).value()).Hex();
  return out;
}

Result<TufKey> ParsePublicKeyText(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (!text.starts_with(kPemPublicHeader)) {
    ASSIGN_OR_RETURN(Ed25519PublicKey key, Ed25519PublicKey::FromHex(text));
    return MakeTufKey(key);
  }
  const std::string pem = std::string(text) + "\n";
  if (auto ed25519 = ReadEd25519PublicPem(pem)) return MakeTufKey(*ed25519);
  for (KeyScheme scheme : {KeyScheme::kEcdsaSha2Nistp256, KeyScheme::kRsassaPssSha256}) {
    if (auto pkey = ReadPublicPem(pem, scheme); pkey.ok()) {
      return KeyFromPkey(std::move(pkey).value(), scheme);
    }
  }
  return InvalidArgument("not an Ed25519, ECDSA P-256 or RSA (>= 2048 bits) PEM public key");
}

Result<TufKey> ParseTufKey(std::string_view keyid, const Json& key_json) {
  // TUF lets key objects carry members of their own: status(), not Finish().
  JsonObjectReader r(key_json, "key");
  r.Require({"keytype", "scheme", "keyval"});
  std::string keytype, scheme_name, public_text;
  r.String("keytype", keytype);
  r.String("scheme", scheme_name);
  const Json* keyval = r.Object("keyval");
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(KeyScheme scheme, SchemeOf(keytype, scheme_name));
  JsonObjectReader keyval_reader(*keyval, "key.keyval");
  keyval_reader.Require({"public"});
  keyval_reader.String("public", public_text);
  RETURN_IF_ERROR(keyval_reader.status());
  TufKey key;
  key.scheme = scheme;
  if (scheme == KeyScheme::kEd25519) {
    ASSIGN_OR_RETURN(Ed25519PublicKey public_key, Ed25519PublicKey::FromHex(public_text));
    key.identity.assign(public_key.bytes.begin(), public_key.bytes.end());
  } else {
    ASSIGN_OR_RETURN(key.pkey, ReadPublicPem(public_text, scheme));
    ASSIGN_OR_RETURN(key.identity, KeyIdentity(key.pkey.get()));
  }
  ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(key_json));
  key.keyid = Digest::Of(canonical).Hex();
  if (key.keyid != keyid) {
    return Corruption("key id " + std::string(keyid.substr(0, 16)) +
                      "... is not the SHA-256 of its key (" + key.keyid.substr(0, 16) + "...)");
  }
  key.json = key_json;
  return key;
}

Status VerifyTufSignature(const TufKey& key, ByteSpan message, ByteSpan signature) {
  if (key.scheme == KeyScheme::kEd25519) {
    ASSIGN_OR_RETURN(Ed25519PublicKey public_key,
                     Ed25519PublicKey::FromBytes(AsBytes(key.identity)));
    return VerifyEd25519(public_key, message, signature);
  }
  if (!key.pkey) return Internal("key " + key.keyid.substr(0, 16) + " was not parsed");
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.pkey.get()) != 1) {
    ERR_clear_error();
    return Internal("OpenSSL could not start a verification");
  }
  RETURN_IF_ERROR(SetUpContext(pctx, key.scheme, RSA_PSS_SALTLEN_AUTO));
  int rc = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                            message.size());
  ERR_clear_error();
  if (rc != 1) {
    return Corruption(std::string(SchemeName(key.scheme)) + " signature does not verify with key " +
                      key.keyid.substr(0, 16));
  }
  return Status::Ok();
}

TufSigner TufSigner::FromEd25519(const Ed25519PrivateKey& key) {
  TufSigner signer;
  signer.key_ = MakeTufKey(key.public_key());
  signer.ed25519_ = key;
  return signer;
}

Result<TufSigner> TufSigner::Generate(KeyScheme scheme) {
  if (scheme == KeyScheme::kEd25519) return FromEd25519(Ed25519PrivateKey::Generate());
  PkeyPtr pkey =
      Own(scheme == KeyScheme::kEcdsaSha2Nistp256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(3072));
  ERR_clear_error();
  if (!pkey) return Internal("OpenSSL could not generate a key");
  TufSigner signer;
  ASSIGN_OR_RETURN(signer.key_, KeyFromPkey(pkey, scheme));
  signer.pkey_ = std::move(pkey);
  return signer;
}

Result<TufSigner> TufSigner::FromPrivatePem(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return InvalidArgument("private key file too large");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  // A null password callback would prompt on the terminal; refuse encrypted keys instead.
  auto no_password = [](char*, int, int, void*) { return 0; };
  PkeyPtr pkey =
      Own(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
  ERR_clear_error();
  if (!pkey) return InvalidArgument("not a readable, unencrypted PEM private key");
  if (EVP_PKEY_is_a(pkey.get(), "ED25519")) {
    std::array<uint8_t, Ed25519PrivateKey::kSeedSize> seed{};
    size_t length = seed.size();
    const bool read = EVP_PKEY_get_raw_private_key(pkey.get(), seed.data(), &length) == 1;
    ERR_clear_error();
    if (!read || length != seed.size()) return InvalidArgument("unreadable Ed25519 private key");
    auto key = Ed25519PrivateKey::FromSeed(ByteSpan(seed.data(), seed.size()));
    OPENSSL_cleanse(seed.data(), seed.size());
    if (!key.ok()) return key.status();
    return FromEd25519(*key);
  }
  KeyScheme scheme =
      EVP_PKEY_is_a(pkey.get(), "EC") ? KeyScheme::kEcdsaSha2Nistp256 : KeyScheme::kRsassaPssSha256;
  RETURN_IF_ERROR(CheckKeyFitsScheme(pkey.get(), scheme));
  TufSigner signer;
  ASSIGN_OR_RETURN(signer.key_, KeyFromPkey(pkey, scheme));
  signer.pkey_ = std::move(pkey);
  return signer;
}

Result<TufSigner> TufSigner::LoadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxPemBytes));
  if (text.starts_with("-----BEGIN")) return FromPrivatePem(text).WithContext(path);
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, Ed25519PrivateKey::LoadFile(path));
  return FromEd25519(key);
}

Result<Bytes> TufSigner::Sign(ByteSpan message) const {
  if (ed25519_) {
    Ed25519Signature sig = ed25519_->Sign(message);
    return Bytes(sig.begin(), sig.end());
  }
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  size_t length = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, pkey_.get()) != 1) {
    ERR_clear_error();
    return Internal("OpenSSL could not start a signature");
  }
  RETURN_IF_ERROR(SetUpContext(pctx, key_.scheme, RSA_PSS_SALTLEN_DIGEST));
  if (EVP_DigestSign(ctx.get(), nullptr, &length, message.data(), message.size()) != 1) {
    ERR_clear_error();
    return Internal("OpenSSL could not size a signature");
  }
  Bytes sig(length);
  if (EVP_DigestSign(ctx.get(), sig.data(), &length, message.data(), message.size()) != 1) {
    ERR_clear_error();
    return Internal("OpenSSL could not sign");
  }
  sig.resize(length);
  return sig;
}

}  // namespace flotilla::metadata
