// Signed TUF documents: {"signatures":[{"keyid","sig"}...],"signed":{...}}.
//
// Verification follows TUF 1.0: the signed bytes are the canonical JSON of
// the `signed` object; a signature counts toward a role's threshold only if
// its key id is one of the role's, the key verifies it, and neither the key id
// nor the public key has been counted already (so a duplicated signature, or
// one key listed under two key ids, counts once). Signatures that do not
// verify are ignored, not fatal: enough good ones beside a bad one pass.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/ed25519.h"
#include "core/status.h"
#include "metadata/tuf_types.h"

namespace flotilla::metadata {

struct TufSignature {
  std::string keyid;
  std::string sig_hex;  // as given; decoded at verification time
};

struct SignedDocument {
  Json signed_json;
  std::string canonical_signed;  // CanonicalJson(signed_json): the bytes signatures cover
  std::vector<TufSignature> signatures;
};

// Parses a whole metadata document with ParseJsonStrict (duplicate keys,
// trailing bytes, bad UTF-8 and floats refused) bounded by `max_bytes`.
Result<SignedDocument> ParseSignedDocument(std::string_view bytes, uint64_t max_bytes);

// OK when at least role.threshold distinct keys of `role` (looked up in
// `keys`) signed `document`. `what` names the document in the error.
Status VerifyThreshold(const SignedDocument& document, const std::map<std::string, TufKey>& keys,
                       const RoleKeys& role, std::string_view what);

// Adds (or replaces) `key`'s signature over document.canonical_signed.
void AddSignature(SignedDocument& document, const Ed25519PrivateKey& key);

// A document with no signatures yet.
Result<SignedDocument> MakeUnsignedDocument(Json signed_json);

// The document as written to disk: pretty-printed JSON (signatures are over
// the canonical `signed`, so the outer encoding is free), ending in a newline.
std::string SerializeDocument(const SignedDocument& document);

}  // namespace flotilla::metadata
