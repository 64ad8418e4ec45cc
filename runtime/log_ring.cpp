#include "runtime/log_ring.h"

namespace flotilla::runtime {

void LogRing::Append(std::string_view data) {
  if (data.size() >= capacity_) {
    dropped_ += buffer_.size() + data.size() - capacity_;
    buffer_.assign(data.substr(data.size() - capacity_));
    head_ = 0;
    return;
  }
  size_t room = capacity_ - buffer_.size();
  size_t direct = std::min(room, data.size());
  buffer_.append(data.substr(0, direct));
  for (char c : data.substr(direct)) {
    buffer_[head_] = c;
    head_ = (head_ + 1) % capacity_;
    ++dropped_;
  }
}

std::string LogRing::Contents() const {
  std::string out =
      buffer_.size() < capacity_ ? buffer_ : buffer_.substr(head_) + buffer_.substr(0, head_);
  if (dropped_ > 0) {
    size_t newline = out.find('\n');
    if (newline != std::string::npos) out.erase(0, newline + 1);
  }
  return out;
}

}  // namespace flotilla::runtime
