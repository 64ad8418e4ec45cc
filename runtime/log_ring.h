// A bounded byte ring: the newest `capacity` bytes of an app's output.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace flotilla::runtime {

class LogRing {
 public:
  explicit LogRing(size_t capacity) : capacity_(capacity) { buffer_.reserve(capacity); }

  // Appends, dropping the oldest bytes beyond the capacity.
  void Append(std::string_view data);
  // The retained bytes, oldest first. When bytes were dropped, the first
  // partial line is dropped too, so a reader always starts at a line.
  std::string Contents() const;
  size_t dropped_bytes() const { return dropped_; }

 private:
  size_t capacity_;
  std::string buffer_;  // a circular buffer once full
  size_t head_ = 0;     // oldest byte when full
  size_t dropped_ = 0;
};

}  // namespace flotilla::runtime
