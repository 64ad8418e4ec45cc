// A small bencode writer for tracker responses (BEP 3).
//
// Dictionaries are written with keys in sorted order, as BEP 3 requires, so
// that any two writers produce the same bytes for the same value.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace flotilla::tracker {

class BencodeValue;
using BencodeList = std::vector<BencodeValue>;
using BencodeDict = std::map<std::string, BencodeValue>;

// A bencode integer, byte string, list or dictionary.
class BencodeValue {
 public:
  BencodeValue(int64_t v) : value_(v) {}                   // NOLINT: implicit by design
  BencodeValue(std::string v) : value_(std::move(v)) {}    // NOLINT
  BencodeValue(const char* v) : value_(std::string(v)) {}  // NOLINT
  BencodeValue(BencodeList v) : value_(std::make_shared<BencodeList>(std::move(v))) {}  // NOLINT
  BencodeValue(BencodeDict v) : value_(std::make_shared<BencodeDict>(std::move(v))) {}  // NOLINT

  // Appends the encoding of this value to `out`.
  void EncodeTo(std::string& out) const;
  std::string Encode() const;

 private:
  std::variant<int64_t, std::string, std::shared_ptr<BencodeList>, std::shared_ptr<BencodeDict>>
      value_;
};

}  // namespace flotilla::tracker
