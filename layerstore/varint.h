// Varints (LEB128: 7 bits a byte, low bits first, the high bit set on all but
// the last byte) and length-prefixed strings: the framing of the tar-split
// and delta formats (docs/layerstore.md, docs/delta.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/bytes.h"
#include "core/status.h"

namespace flotilla::layerstore {

void PutVarint(Bytes& out, uint64_t v);
// varint(text.size()), then the bytes of `text`.
void PutLengthPrefixed(Bytes& out, std::string_view text);

// The varint at data[pos], advancing pos past it; nullopt when `data` ends
// inside it (a stream reader waits for more); Corruption when it does not fit
// in 64 bits.
Result<std::optional<uint64_t>> ParseVarint(ByteSpan data, size_t& pos);

}  // namespace flotilla::layerstore
