// HTTP Range requests (RFC 9110, single byte ranges only).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/status.h"

namespace flotilla::http {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Resolves a Range header value against a representation of `size` bytes:
// "bytes=a-b", "bytes=a-" and "bytes=-n". An absent header is nullopt (send
// the whole file). Anything else (multiple ranges, other units, a start at or
// beyond the end, malformed numbers) fails, and the server answers 416.
Result<std::optional<ByteRange>> ResolveRange(std::optional<std::string_view> header,
                                              uint64_t size);

}  // namespace flotilla::http
