#include "http/byte_range.h"

#include <charconv>

namespace flotilla::http {
namespace {

Result<uint64_t> ParseNumber(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument("bad number in Range");
  }
  return value;
}

}  // namespace

Result<std::optional<ByteRange>> ResolveRange(std::optional<std::string_view> header,
                                              uint64_t size) {
  if (!header) return std::optional<ByteRange>();
  std::string_view spec = *header;
  constexpr std::string_view kUnit = "bytes=";
  if (spec.substr(0, kUnit.size()) != kUnit) return InvalidArgument("Range unit is not bytes");
  spec.remove_prefix(kUnit.size());
  if (spec.find(',') != std::string_view::npos) return InvalidArgument("multiple ranges");
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return InvalidArgument("Range without '-'");
  std::string_view first = spec.substr(0, dash), last = spec.substr(dash + 1);
  if (first.empty()) {  // suffix: the last n bytes
    ASSIGN_OR_RETURN(uint64_t n, ParseNumber(last));
    if (n == 0 || size == 0) return InvalidArgument("empty suffix range");
    n = std::min(n, size);
    return std::optional<ByteRange>(ByteRange{size - n, n});
  }
  ASSIGN_OR_RETURN(uint64_t start, ParseNumber(first));
  if (start >= size) return InvalidArgument("Range starts beyond the end");
  uint64_t end = size - 1;
  if (!last.empty()) {
    ASSIGN_OR_RETURN(end, ParseNumber(last));
    if (end < start) return InvalidArgument("Range ends before it starts");
    end = std::min(end, size - 1);
  }
  return std::optional<ByteRange>(ByteRange{start, end - start + 1});
}

}  // namespace flotilla::http
