// The three TUF signature schemes and the hash rules. Keys and signatures of
// an independent implementation (python3-cryptography, the way
// securesystemslib makes them: tests/metadata/interop/make_signature_vectors.py
// wrote metadata/testdata/independent-signatures.json) must verify; flotilla's
// own signer must produce what they verify the same way.
#include "metadata/tuf_keys.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>

#include "core/file_io.h"
#include "metadata/adversarial_fixture.h"
#include "metadata/tuf_hashes.h"
#include "metadata/tuf_signing.h"

namespace flotilla::metadata::testing {
namespace {

// Standard output of `command` (the openssl command line, independent of flotilla).
std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  ::pclose(pipe);
  return out;
}

Json Vectors() {
  auto text = ReadTextFileBounded(
      std::string(FLOTILLA_SOURCE_DIR) + "/metadata/testdata/independent-signatures.json", 1 << 20);
  return Json::parse(text.value())["vectors"];
}

TEST(TufKeys, IndependentKeysAndSignaturesOfEveryScheme) {
  int valid = 0;
  for (const Json& v : Vectors()) {
    SCOPED_TRACE(v["name"].get<std::string>());
    auto key = ParseTufKey(v["keyid"].get<std::string>(), v["key"]);
    if (v.value("refused", "") == "key") {
      ASSERT_FALSE(key.ok());
      EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    ASSERT_TRUE(key.ok()) << key.status().ToString();  // the key id is the one python computed
    const std::string message = CanonicalJson(v["signed"]).value();
    const Bytes sig = HexDecode(v["sig"].get<std::string>()).value();
    Status verified = VerifyTufSignature(*key, AsBytes(message), sig);
    if (!v["valid"].get<bool>()) {
      EXPECT_EQ(verified.code(), StatusCode::kCorruption);
      continue;
    }
    EXPECT_TRUE(verified.ok()) << verified.ToString();
    ++valid;
    // One changed byte of the message, or of the signature, and it fails.
    std::string changed = message;
    changed[changed.size() / 2] ^= 1;
    EXPECT_FALSE(VerifyTufSignature(*key, AsBytes(changed), sig).ok());
    Bytes bad_sig = sig;
    bad_sig[bad_sig.size() / 2] ^= 1;
    EXPECT_FALSE(VerifyTufSignature(*key, AsBytes(message), bad_sig).ok());
  }
  EXPECT_EQ(valid, 5);
}

TEST(TufKeys, IndependentSignatureCountsTowardAThreshold) {
  std::map<std::string, TufKey> keys;
  RoleKeys role;
  role.threshold = 3;  // ed25519, ecdsa and rsa keys, each signing the same document
  SignedDocument doc;
  for (const Json& v : Vectors()) {
    const std::string name = v["name"];
    if (name != "ed25519" && name != "ecdsa" && name != "rsa") continue;
    keys.emplace(v["keyid"], ParseTufKey(v["keyid"].get<std::string>(), v["key"]).value());
    role.keyids.push_back(v["keyid"]);
    // Each vector signed its own document; verify each on its own.
    doc = MakeUnsignedDocument(v["signed"]).value();
    doc.signatures = {{v["keyid"], v["sig"]}};
    RoleKeys one{{v["keyid"]}, 1};
    EXPECT_TRUE(VerifyThreshold(doc, keys, one, name).ok()) << name;
  }
  EXPECT_EQ(keys.size(), 3u);
}

TEST(TufKeys, OwnSignerRoundTripsInEveryScheme) {
  for (KeyScheme scheme :
       {KeyScheme::kEd25519, KeyScheme::kEcdsaSha2Nistp256, KeyScheme::kRsassaPssSha256}) {
    SCOPED_TRACE(std::string(SchemeName(scheme)));
    auto signer = TufSigner::Generate(scheme);
    ASSERT_TRUE(signer.ok()) << signer.status().ToString();
    const TufKey& key = signer->key();
    EXPECT_EQ(key.json["scheme"], std::string(SchemeName(scheme)));
    auto parsed = ParseTufKey(key.keyid, key.json);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->identity, key.identity);
    SignedDocument doc = MakeUnsignedDocument(Json{{"_type", "targets"}}).value();
    ASSERT_TRUE(AddSignature(doc, *signer).ok());
    EXPECT_TRUE(VerifyThreshold(doc, {{key.keyid, *parsed}}, {{key.keyid}, 1}, "doc").ok());
  }
}

TEST(TufKeys, PemPrivateKeysSign) {
  // P-256 (SEC1 "EC PRIVATE KEY") made by the openssl command line.
  auto signer = TufSigner::FromPrivatePem(Shell("openssl ecparam -name prime256v1 -genkey -noout"));
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ(signer->key().scheme, KeyScheme::kEcdsaSha2Nistp256);
  EXPECT_EQ(signer->key().json["keytype"], "ecdsa");
  ExpectStatus(TufSigner::FromPrivatePem(Shell("openssl genrsa 1024 2>/dev/null")).status(),
               StatusCode::kInvalidArgument, "TUF requires at least 2048");
  ExpectStatus(TufSigner::FromPrivatePem("not a key").status(), StatusCode::kInvalidArgument,
               "not a readable, unencrypted PEM private key");
}

// An Ed25519 key pair from the openssl command line is an ordinary TUF
// ed25519 key (hex keyval, the key id of the same raw key), so app keys made
// this way suit fleets whose devices accept only Ed25519.
TEST(TufKeys, Ed25519PemKeysAreOrdinaryEd25519Keys) {
  const std::string private_pem = Shell("openssl genpkey -algorithm ed25519");
  auto signer = TufSigner::FromPrivatePem(private_pem);
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ(signer->key().scheme, KeyScheme::kEd25519);
  EXPECT_EQ(signer->key().json["keytype"], "ed25519");
  const std::string public_pem = Shell("printf '%s' '" + private_pem + "' | openssl pkey -pubout");
  auto parsed = ParsePublicKeyText(public_pem);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->keyid, signer->key().keyid);
  EXPECT_EQ(parsed->json, signer->key().json);
  SignedDocument doc = MakeUnsignedDocument(Json{{"_type", "targets"}, {"version", 1}}).value();
  ASSERT_TRUE(AddSignature(doc, *signer).ok());
  EXPECT_TRUE(VerifyThreshold(doc, {{parsed->keyid, *parsed}}, {{parsed->keyid}, 1}, "doc").ok());
}

TEST(TufKeys, MalformedKeysAreRefused) {
  auto ecdsa = TufSigner::Generate(KeyScheme::kEcdsaSha2Nistp256).value();
  Json key = ecdsa.key().json;
  auto id_of = [](const Json& k) { return Digest::Of(CanonicalJson(k).value()).Hex(); };
  key["keyval"]["public"] = "04abcdef";  // hex, as tuf-js also accepts; TUF says PEM
  ExpectStatus(ParseTufKey(id_of(key), key).status(), StatusCode::kInvalidArgument,
               "must be a PEM public key");
  key["keyval"]["public"] = "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n";
  ExpectStatus(ParseTufKey(id_of(key), key).status(), StatusCode::kInvalidArgument,
               "not a readable PEM public key");
  Json rsa_as_ecdsa = TufSigner::Generate(KeyScheme::kRsassaPssSha256).value().key().json;
  rsa_as_ecdsa["keytype"] = "ecdsa";
  rsa_as_ecdsa["scheme"] = "ecdsa-sha2-nistp256";
  ExpectStatus(ParseTufKey(id_of(rsa_as_ecdsa), rsa_as_ecdsa).status(),
               StatusCode::kInvalidArgument, "must be an EC key on curve P-256");
  Json mixed = ecdsa.key().json;
  mixed["scheme"] = "ed25519";
  ExpectStatus(ParseTufKey(id_of(mixed), mixed).status(), StatusCode::kInvalidArgument,
               "unsupported key type 'ecdsa' with scheme 'ed25519'");
}

TEST(TufKeys, OneEcdsaKeyUnderTwoKeyTypesCountsOnce) {
  auto signer = TufSigner::Generate(KeyScheme::kEcdsaSha2Nistp256).value();
  Json alias_json = signer.key().json;
  alias_json["keytype"] = "ecdsa-sha2-nistp256";  // same key, another key id
  const std::string alias_id = Digest::Of(CanonicalJson(alias_json).value()).Hex();
  TufKey alias = ParseTufKey(alias_id, alias_json).value();
  ASSERT_NE(alias.keyid, signer.key().keyid);
  SignedDocument doc = MakeUnsignedDocument(Json{{"_type", "root"}}).value();
  ASSERT_TRUE(AddSignature(doc, signer).ok());
  doc.signatures.push_back({alias_id, doc.signatures[0].sig_hex});
  std::map<std::string, TufKey> keys{{signer.key().keyid, signer.key()}, {alias_id, alias}};
  ExpectStatus(VerifyThreshold(doc, keys, {{signer.key().keyid, alias_id}, 2}, "root"),
               StatusCode::kCorruption, "1 valid signature(s), threshold is 2");
}

TEST(TufHashes, EverySupportedHashMustMatchAndUnknownOnesAreIgnored) {
  const std::string data = "target bytes";
  HashMap both = ComputeHashes(AsBytes(data), {"sha256", "sha512"}).value();
  EXPECT_EQ(both.at("sha512").size(), 128u);
  EXPECT_TRUE(CheckLengthAndHashes("t", AsBytes(data), data.size(), both, true).ok());
  HashMap only512{{"sha512", both.at("sha512")}};
  EXPECT_TRUE(CheckLengthAndHashes("t", AsBytes(data), data.size(), only512, true).ok());
  HashMap with_unknown{{"sha256", both.at("sha256")}, {"blake3", "00"}};
  EXPECT_TRUE(CheckLengthAndHashes("t", AsBytes(data), {}, with_unknown, true).ok());
  HashMap wrong512 = both;
  wrong512["sha512"][0] = wrong512["sha512"][0] == '0' ? '1' : '0';
  ExpectStatus(CheckLengthAndHashes("t", AsBytes(data), {}, wrong512, true),
               StatusCode::kCorruption, "t does not match its signed sha512");
  ExpectStatus(CheckLengthAndHashes("t", AsBytes(data), {}, {{"md5", "00"}}, true),
               StatusCode::kCorruption, "lists no hash flotilla computes");
  ExpectStatus(CheckLengthAndHashes("t", AsBytes(data), {}, {}, true), StatusCode::kCorruption,
               "has no signed hash");
  HashMap upper = both;
  for (char& c : upper["sha256"]) c = static_cast<char>(std::toupper(c));
  EXPECT_FALSE(CheckLengthAndHashes("t", AsBytes(data), {}, upper, true).ok());
  EXPECT_EQ(HashForFileName(only512), both.at("sha512"));
  EXPECT_EQ(HashForFileName(both), both.at("sha256"));
}

}  // namespace
}  // namespace flotilla::metadata::testing
