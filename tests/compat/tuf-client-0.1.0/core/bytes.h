// Byte buffers and hex text.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace flotilla {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsStringView(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// 0-15 for a hex digit of either case, -1 for anything else.
int HexDigitValue(char c);

// Lower-case hex.
std::string HexEncode(ByteSpan bytes);
// Accepts lower- and upper-case digits; refuses odd lengths and other characters.
Result<Bytes> HexDecode(std::string_view hex);

// Compares in time independent of where the inputs first differ.
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

}  // namespace flotilla
