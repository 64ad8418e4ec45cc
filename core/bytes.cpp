#include "core/bytes.h"

#include <sodium.h>

namespace flotilla {
int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return InvalidArgument("truncated percent escape");
    int high = HexDigitValue(text[i + 1]), low = HexDigitValue(text[i + 2]);
    if (high < 0 || low < 0) return InvalidArgument("malformed percent escape");
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

std::string HexEncode(ByteSpan bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');  // sodium_bin2hex ends it with a NUL
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgument("hex text has an odd length");
  Bytes out(hex.size() / 2);
  // Without an end pointer, sodium_hex2bin refuses anything but hex digits.
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, nullptr, nullptr) !=
      0) {
    return InvalidArgument("hex text has a non-hex character");
  }
  return out;
}

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace flotilla
