#include "metadata/tuf_signing.h"

#include <algorithm>
#include <set>

#include "metadata/json_fields.h"

namespace flotilla::metadata {
namespace jf = json_fields;

Result<SignedDocument> ParseSignedDocument(std::string_view bytes, uint64_t max_bytes) {
  if (bytes.size() > max_bytes) {
    return ResourceExhausted("metadata of " + std::to_string(bytes.size()) +
                             " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  // bytes.size() <= max_bytes here, so the limit fits a size_t (32-bit too).
  const size_t limit = static_cast<size_t>(std::min<uint64_t>(max_bytes, bytes.size()));
  ASSIGN_OR_RETURN(Json document, ParseJsonStrict(bytes, JsonLimits{limit, 32}));
  RETURN_IF_ERROR(jf::RequireObject(document, "metadata document"));
  RETURN_IF_ERROR(jf::OnlyKeys(document, {"signatures", "signed"}, "metadata document"));
  SignedDocument out;
  ASSIGN_OR_RETURN(const Json* signed_json, jf::GetObject(document, "signed"));
  ASSIGN_OR_RETURN(const Json* signatures, jf::GetArray(document, "signatures"));
  for (const Json& sig : *signatures) {
    RETURN_IF_ERROR(jf::RequireObject(sig, "signature"));
    TufSignature parsed;
    ASSIGN_OR_RETURN(parsed.keyid, jf::GetString(sig, "keyid"));
    ASSIGN_OR_RETURN(parsed.sig_hex, jf::GetString(sig, "sig"));
    out.signatures.push_back(std::move(parsed));
  }
  auto canonical = CanonicalJson(*signed_json);
  if (!canonical.ok()) return canonical.status().WithContext("signed part not canonicalizable");
  out.canonical_signed = std::move(canonical).value();
  out.signed_json = *signed_json;
  return out;
}

Status VerifyThreshold(const SignedDocument& document, const std::map<std::string, TufKey>& keys,
                       const RoleKeys& role, std::string_view what) {
  if (role.threshold == 0) return Corruption(std::string(what) + ": threshold of zero");
  std::set<std::string> role_keyids(role.keyids.begin(), role.keyids.end());
  std::set<std::string> counted_keyids;
  std::set<std::string> counted_public_keys;
  uint32_t valid = 0;
  for (const auto& signature : document.signatures) {
    if (!role_keyids.contains(signature.keyid) || counted_keyids.contains(signature.keyid)) {
      continue;
    }
    auto key = keys.find(signature.keyid);
    if (key == keys.end()) continue;
    std::string public_hex = key->second.public_key.Hex();
    if (counted_public_keys.contains(public_hex)) continue;
    auto sig = HexDecode(signature.sig_hex);
    if (!sig.ok()) continue;
    if (!VerifyEd25519(key->second.public_key, AsBytes(document.canonical_signed), *sig).ok()) {
      continue;
    }
    counted_keyids.insert(signature.keyid);
    counted_public_keys.insert(public_hex);
    ++valid;
  }
  if (valid < role.threshold) {
    return Corruption(std::string(what) + ": " + std::to_string(valid) +
                      " valid signature(s), threshold is " + std::to_string(role.threshold));
  }
  return Status::Ok();
}

void AddSignature(SignedDocument& document, const Ed25519PrivateKey& key) {
  TufKey tuf_key = MakeTufKey(key.public_key());
  Ed25519Signature sig = key.Sign(AsBytes(document.canonical_signed));
  std::erase_if(document.signatures,
                [&](const TufSignature& s) { return s.keyid == tuf_key.keyid; });
  document.signatures.push_back({tuf_key.keyid, HexEncode(sig)});
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
