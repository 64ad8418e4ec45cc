#include "runtime/log_ring.h"

#include <algorithm>

namespace flotilla::runtime {

void LogRing::Remember(uint64_t offset, int64_t unix_s) {
  if (!line_times_.empty() && line_times_.back().unix_s >= unix_s) return;
  line_times_.push_back({offset, unix_s});
  if (line_times_.size() > kMaxLineTimes) line_times_.pop_front();
}

void LogRing::Append(std::string_view data, int64_t unix_s) {
  if (data.empty()) return;
  // The first line that starts in `data` gets its time; later lines of the
  // same second need none (a reader cuts at the first line of a second).
  size_t start = at_line_start_ ? 0 : data.find('\n');
  if (start != std::string_view::npos && !at_line_start_) ++start;
  if (start != std::string_view::npos && start < data.size()) Remember(appended_ + start, unix_s);
  at_line_start_ = data.back() == '\n';
  appended_ += data.size();

  if (data.size() >= capacity_) {
    dropped_ += buffer_.size() + data.size() - capacity_;
    buffer_.assign(data.substr(data.size() - capacity_));
    head_ = 0;
  } else {
    size_t room = capacity_ - buffer_.size();
    size_t direct = std::min(room, data.size());
    buffer_.append(data.substr(0, direct));
    for (char c : data.substr(direct)) {
      buffer_[head_] = c;
      head_ = (head_ + 1) % capacity_;
      ++dropped_;
    }
  }
  // Times of lines no longer held go, but the newest of them stays as the
  // time of the partial line the ring now starts in.
  while (line_times_.size() > 1 && line_times_[1].offset <= dropped_) line_times_.pop_front();
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

std::string LogRing::ContentsSince(int64_t unix_s) const {
  auto first = std::find_if(line_times_.begin(), line_times_.end(),
                            [&](const LineTime& t) { return t.unix_s >= unix_s; });
  if (first == line_times_.end()) return "";
  if (first == line_times_.begin()) return Contents();
  std::string out = Contents();
  const uint64_t held_from = appended_ - out.size();
  if (first->offset <= held_from) return out;
  return out.substr(static_cast<size_t>(first->offset - held_from));
}

}  // namespace flotilla::runtime
