#include "node/daemon/log_upload.h"

#include <algorithm>

#include "fmt/format.h"

namespace flotilla::node {

std::string RedactSecrets(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<std::string_view> values;
  for (const std::string& s : secrets) {
    if (!s.empty()) values.emplace_back(s);
  }
  // Longest first: at one position the longest matching value wins.
  std::sort(values.begin(), values.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  if (values.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    bool replaced = false;
    for (std::string_view value : values) {
      if (text.substr(i).starts_with(value)) {
        out += kRedactedMarker;
        i += value.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

std::string BoundLog(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  // The marker's length depends on the count it prints; the count never
  // has more digits than text.size(), so size the marker for that.
  const std::string widest = fmt::format("[flotilla: {} earlier bytes not sent]\n", text.size());
  if (widest.size() >= max_bytes) return std::string(text.substr(text.size() - max_bytes));
  std::string_view kept = text.substr(text.size() - (max_bytes - widest.size()));
  const size_t cut_at = text.size() - kept.size();
  // Start at a line when the cut fell inside one (and a later line exists).
  if (cut_at > 0 && text[cut_at - 1] != '\n') {
    const size_t newline = kept.find('\n');
    if (newline != std::string_view::npos && newline + 1 < kept.size()) {
      kept.remove_prefix(newline + 1);
    }
  }
  return fmt::format("[flotilla: {} earlier bytes not sent]\n", text.size() - kept.size()) +
         std::string(kept);
}

}  // namespace flotilla::node
