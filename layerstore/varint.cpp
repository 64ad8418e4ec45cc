#include "layerstore/varint.h"

namespace flotilla::layerstore {

void PutVarint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

void PutLengthPrefixed(Bytes& out, std::string_view text) {
  PutVarint(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

Result<std::optional<uint64_t>> ParseVarint(ByteSpan data, size_t& pos) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= data.size()) return std::optional<uint64_t>();
    uint8_t byte = data[pos++];
    if (shift == 63 && byte > 1) return Corruption("varint overflows 64 bits");
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return std::optional<uint64_t>(value);
  }
  return Corruption("varint too long");
}

}  // namespace flotilla::layerstore
