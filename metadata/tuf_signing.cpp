#include "metadata/tuf_signing.h"

#include <algorithm>
#include <set>

#include "core/json_object_reader.h"
#include "metadata/tuf_names.h"

namespace flotilla::metadata {

Result<SignedDocument> ParseSignedDocument(std::string_view bytes, uint64_t max_bytes) {
  if (bytes.size() > max_bytes) {
    return ResourceExhausted("metadata of " + std::to_string(bytes.size()) +
                             " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  // bytes.size() <= max_bytes here, so the limit fits a size_t (32-bit too).
  const size_t limit = static_cast<size_t>(std::min<uint64_t>(max_bytes, bytes.size()));
  ASSIGN_OR_RETURN(Json document, ParseJsonStrict(bytes, JsonLimits{limit, 32}));
  JsonObjectReader r(document, "metadata document");
  r.Require({"signatures", "signed"});
  const Json* signed_json = r.Object("signed");
  const Json* signatures = r.Array("signatures");
  RETURN_IF_ERROR(r.Finish());
  SignedDocument out;
  std::set<std::string> keyids;
  for (size_t i = 0; i < signatures->size(); ++i) {
    JsonObjectReader sig((*signatures)[i], "signatures[" + std::to_string(i) + "]");
    sig.Require({"keyid", "sig"});
    TufSignature parsed;
    sig.String("keyid", parsed.keyid);
    sig.String("sig", parsed.sig_hex);
    RETURN_IF_ERROR(sig.status());
    if (!keyids.insert(parsed.keyid).second) {
      return Corruption("two signatures carry key id " + PercentEncode(parsed.keyid.substr(0, 64)) +
                        " (TUF allows one signature per key id)");
    }
    out.signatures.push_back(std::move(parsed));
  }
  ASSIGN_OR_RETURN(out.canonical_signed,
                   CanonicalJson(*signed_json).WithContext("signed part not canonicalizable"));
  out.signed_json = *signed_json;
  return out;
}

Status VerifyThreshold(const SignedDocument& document, const std::map<std::string, TufKey>& keys,
                       const RoleKeys& role, std::string_view what) {
  if (role.threshold == 0) return Corruption(std::string(what) + ": threshold of zero");
  std::set<std::string> role_keyids(role.keyids.begin(), role.keyids.end());
  std::set<std::string> counted_keyids;
  std::set<std::string> counted_identities;
  uint32_t valid = 0;
  for (const auto& signature : document.signatures) {
    if (!role_keyids.contains(signature.keyid) || counted_keyids.contains(signature.keyid)) {
      continue;
    }
    auto key = keys.find(signature.keyid);
    if (key == keys.end() || counted_identities.contains(key->second.identity)) continue;
    auto sig = HexDecode(signature.sig_hex);
    if (!sig.ok()) continue;
    if (!VerifyTufSignature(key->second, AsBytes(document.canonical_signed), *sig).ok()) continue;
    counted_keyids.insert(signature.keyid);
    counted_identities.insert(key->second.identity);
    ++valid;
  }
  if (valid < role.threshold) {
    return Corruption(std::string(what) + ": " + std::to_string(valid) +
                      " valid signature(s), threshold is " + std::to_string(role.threshold));
  }
  return Status::Ok();
}

void AddSignature(SignedDocument& document, const Ed25519PrivateKey& key) {
  Status added = AddSignature(document, TufSigner::FromEd25519(key));
  (void)added;  // Ed25519 signing cannot fail
}

Status AddSignature(SignedDocument& document, const TufSigner& signer) {
  ASSIGN_OR_RETURN(Bytes sig, signer.Sign(AsBytes(document.canonical_signed)));
  const std::string& keyid = signer.key().keyid;
  std::erase_if(document.signatures, [&](const TufSignature& s) { return s.keyid == keyid; });
  document.signatures.push_back({keyid, HexEncode(sig)});
  return Status::Ok();
}

Result<SignedDocument> MakeUnsignedDocument(Json signed_json) {
  SignedDocument document;
  ASSIGN_OR_RETURN(document.canonical_signed, CanonicalJson(signed_json));
  document.signed_json = std::move(signed_json);
  return document;
}

std::string SerializeDocument(const SignedDocument& document) {
  Json signatures = Json::array();
  for (const auto& s : document.signatures) {
    signatures.push_back(Json{{"keyid", s.keyid}, {"sig", s.sig_hex}});
  }
  Json whole{{"signatures", signatures}, {"signed", document.signed_json}};
  return whole.dump(1) + "\n";
}

}  // namespace flotilla::metadata
