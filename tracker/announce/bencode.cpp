#include "tracker/announce/bencode.h"

#include <fmt/format.h>

namespace flotilla::tracker {

void BencodeValue::EncodeTo(std::string& out) const {
  if (const auto* i = std::get_if<int64_t>(&value_)) {
    fmt::format_to(std::back_inserter(out), "i{}e", *i);
  } else if (const auto* s = std::get_if<std::string>(&value_)) {
    fmt::format_to(std::back_inserter(out), "{}:", s->size());
    out += *s;
  } else if (const auto* l = std::get_if<std::shared_ptr<BencodeList>>(&value_)) {
    out += 'l';
    for (const auto& item : **l) item.EncodeTo(out);
    out += 'e';
  } else {
    out += 'd';
    for (const auto& [key, item] : *std::get<std::shared_ptr<BencodeDict>>(value_)) {
      fmt::format_to(std::back_inserter(out), "{}:", key.size());
      out += key;
      item.EncodeTo(out);
    }
    out += 'e';
  }
}

std::string BencodeValue::Encode() const {
  std::string out;
  EncodeTo(out);
  return out;
}

}  // namespace flotilla::tracker
