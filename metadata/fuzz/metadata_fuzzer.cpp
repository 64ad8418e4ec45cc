// libFuzzer target over what a device parses from the network: a signed
// metadata document (strict JSON, canonical re-encoding, signatures), each
// role's parser (keys of all three schemes: Ed25519 hex, ECDSA and RSA PEM;
// delegations with paths, hash prefixes and succinct hash bins), threshold
// verification of every scheme against a fixed trusted root and against the
// document's own delegations, the delegation search's matching, the
// flotilla release schema in targets' custom fields, and the name, time and
// percent-decoding helpers. Any crash, sanitizer report or leak is a bug.
// Built and run by scripts/fuzz-metadata.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/bytes.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_time.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {
namespace {

// An ECDSA P-256 and an RSA key (from metadata/testdata/independent-signatures.json).
constexpr char kEcdsaPem[] = R"PEM(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAeHPV3mkVkncOr+jrjrxYjSqFkIV
sxyvmqc5EDd6ivb29yjlP4rk9nj6Zsp6+SwiHiVgXEpbu8fC+uzzggCMBA==
-----END PUBLIC KEY-----
)PEM";
constexpr char kRsaPem[] = R"PEM(-----BEGIN PUBLIC KEY-----
MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAxFzR6il2X1BppiJ5k3DS
S2/sRPcfW5T9c3e+cIXGjFsr6u8hC4dGrAly9zqQOCbQZPKJflpGm1KIWOf9BiLe
QWSViXg+Ng5kWgfqYY3VtPOGDLbJVFne1jfqBzBu2TxsmXqEdclb3BRUltE8lcG1
9k0fViSeH5Ulr37oTI0uy1F7YQY4OSDDE+pxt9F3+yVt1qS6LP5xFE0Qg4emEXgV
LXuZ/jNjDJcatbeTTBLPb8eUUOI7gbt0Y7smcQXws6XNjCkPArNTvdi5qJO46okw
9go9c5V114cpEmltoAcEv7F9Zg4s+HW9uM4eT0bWNHi8hX+ahQnLzARZDrmThXcK
LO1+uRv1/jcCPzEy/cL/iaUohD+uxJYoWCdZ8Io6jlLPT3tUP/DCZwvag97ARFCr
pbGKTACntO51R27038s4zpyiZ0jdO9nouhq+pt/eiMdI+FdnJIzqc5xJ1id74bY6
UysYxkFTnFJulAZ2e3wHJlb/3Gyvavkf/Z9UuAgoY8+XAgMBAAE=
-----END PUBLIC KEY-----
)PEM";

TufKey PemKey(const char* keytype, const char* scheme, const char* pem) {
  Json json{{"keytype", keytype}, {"scheme", scheme}, {"keyval", {{"public", pem}}}};
  return ParseTufKey(Digest::Of(CanonicalJson(json).value()).Hex(), json).value();
}

// The trusted root the verifier checks against: one Ed25519 key per role, the
// keys of the TUF reference fixture (metadata/testdata/tuf-reference); the
// targets role also holds an ECDSA and an RSA key, so that fuzzed signatures
// reach every scheme's verifier.
const RootMetadata& TrustedRoot() {
  static const RootMetadata root = [] {
    RootMetadata r;
    const char* hex[] = {"420648bdb87899d8ce2fd5de67fa99eb31bfca73ba96b8eb3e6993c255c3c79c",
                         "c9707d66fda86f2f20e2f740eb4271c7043d348133fbe6b12d559b019252c1f5",
                         "65285acf62b17e45b8c68aeb921a1aa1a004ba659ecd3d400fe759dbaf1f57a9",
                         "4109e24689632746f1cfb3265a1ac1e14252c0ed092398c9684ac04e78512372"};
    for (size_t i = 0; i < 4; ++i) {
      TufKey key = MakeTufKey(Ed25519PublicKey::FromHex(hex[i]).value());
      r.roles[kAllRoles[i]] = RoleKeys{{key.keyid}, 1};
      r.keys.emplace(key.keyid, std::move(key));
    }
    for (TufKey key : {PemKey("ecdsa", "ecdsa-sha2-nistp256", kEcdsaPem),
                       PemKey("rsa", "rsassa-pss-sha256", kRsaPem)}) {
      r.roles[RoleType::kTargets].keyids.push_back(key.keyid);
      r.keys.emplace(key.keyid, std::move(key));
    }
    return r;
  }();
  return root;
}

void ExerciseTargets(const SignedDocument& doc, const TargetsMetadata& targets) {
  for (const auto& [name, target] : targets.targets) {
    (void)EncodeTargetUrlPath(name);
    if (target.custom.is_object() && target.custom.contains("flotilla")) {
      auto release = ParseRelease(target.custom);
      if (release.ok()) (void)CanonicalJson(ReleaseToJson(*release));
    }
  }
  if (targets.delegations) {
    const Delegations& delegations = *targets.delegations;
    for (const char* name : {"apps/demo/release-1.json", "a", ".hidden/x"}) {
      for (const auto& candidate : delegations.CandidatesFor(name)) {
        (void)delegations.KeysOf(candidate.role);
      }
    }
    // Signatures in the document checked against each delegated role's keys.
    for (const auto& role : delegations.roles) {
      (void)VerifyThreshold(doc, delegations.keys, role.keys, role.name);
    }
  }
  (void)LatestReleases(targets);
  (void)CanonicalJson(ToJson(targets));
}

void ExerciseDocument(const SignedDocument& doc) {
  const RootMetadata& trusted = TrustedRoot();
  for (RoleType role : kAllRoles) {
    (void)VerifyThreshold(doc, trusted.keys, trusted.roles.at(role), RoleName(role));
  }
  if (auto root = ParseRoot(doc.signed_json); root.ok()) {
    (void)VerifyThreshold(doc, root->keys, root->roles.at(RoleType::kRoot), "root");
    (void)CanonicalJson(ToJson(*root));
  }
  if (auto ts = ParseTimestamp(doc.signed_json); ts.ok()) (void)CanonicalJson(ToJson(*ts));
  if (auto sn = ParseSnapshot(doc.signed_json); sn.ok()) (void)CanonicalJson(ToJson(*sn));
  if (auto tg = ParseTargets(doc.signed_json); tg.ok()) ExerciseTargets(doc, *tg);
}

}  // namespace
}  // namespace flotilla::metadata

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flotilla::metadata;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto doc = ParseSignedDocument(input, 1 << 20);
  if (doc.ok()) ExerciseDocument(*doc);
  // Short inputs also go through the small parsers.
  if (size <= 2048) {
    (void)ParseTufTime(input);
    (void)ValidateTargetName(input);
    (void)ValidateRoleName(input);
    (void)flotilla::PercentDecode(input);
  }
  return 0;
}
