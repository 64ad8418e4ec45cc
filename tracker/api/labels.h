// Labels in the tracker's API: device names, site labels, app and release
// names as devices report them.
#pragma once

#include <algorithm>
#include <string_view>

namespace flotilla::tracker {

// True for 1-64 characters of [A-Za-z0-9._-].
inline bool IsValidLabel(std::string_view label) {
  return !label.empty() && label.size() <= 64 &&
         std::all_of(label.begin(), label.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

}  // namespace flotilla::tracker
