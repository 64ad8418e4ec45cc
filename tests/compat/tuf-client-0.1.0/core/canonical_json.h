// JSON for signed documents.
//
// CanonicalJson() produces the canonical form TUF signs (securesystemslib's
// encode_canonical, from OLPC canonical JSON): object keys sorted by their
// UTF-8 bytes, no insignificant whitespace, strings with only '\' and '"'
// escaped (every other byte, control characters included, emitted as is),
// integers in decimal, no floating-point numbers at all.
//
// ParseJsonStrict() is the only parser for bytes that come from outside: it
// refuses duplicate object keys (a classic signature-confusion trick),
// invalid UTF-8, trailing bytes, input over a size bound and nesting over a
// depth bound.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace flotilla {

using Json = nlohmann::json;

struct JsonLimits {
  size_t max_bytes = 16 << 20;
  int max_depth = 64;
};

Result<Json> ParseJsonStrict(std::string_view text, const JsonLimits& limits = {});

// Fails with InvalidArgument on a floating-point number or invalid UTF-8.
Result<std::string> CanonicalJson(const Json& value);

}  // namespace flotilla
