// A bounded byte ring: the newest `capacity` bytes of an app's output, with
// the time (to the second) lines started at, so a reader can ask for the
// lines written since a moment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace flotilla::runtime {

class LogRing {
 public:
  // At most this many line times are kept (one per second with output at
  // most): 64 KiB. When more seconds had output, the oldest times are
  // forgotten and their lines count as written at the oldest time kept.
  static constexpr size_t kMaxLineTimes = 4096;

  explicit LogRing(size_t capacity) : capacity_(capacity) { buffer_.reserve(capacity); }

  // Appends what the app wrote at `unix_s` (seconds since the epoch),
  // dropping the oldest bytes beyond the capacity.
  void Append(std::string_view data, int64_t unix_s = 0);
  // The retained bytes, oldest first. When bytes were dropped, the first
  // partial line is dropped too, so a reader always starts at a line.
  std::string Contents() const;
  // The retained lines that started at or after `unix_s` (Contents() when
  // no line time is older). Starts at a line.
  std::string ContentsSince(int64_t unix_s) const;
  size_t dropped_bytes() const { return dropped_; }

 private:
  struct LineTime {
    uint64_t offset;  // of a line start, in bytes ever appended
    int64_t unix_s;
  };
  void Remember(uint64_t offset, int64_t unix_s);

  size_t capacity_;
  std::string buffer_;  // a circular buffer once full
  size_t head_ = 0;     // oldest byte when full
  size_t dropped_ = 0;
  uint64_t appended_ = 0;            // bytes ever appended
  bool at_line_start_ = true;        // the next byte starts a line
  std::deque<LineTime> line_times_;  // oldest first, at most one per second
};

}  // namespace flotilla::runtime
