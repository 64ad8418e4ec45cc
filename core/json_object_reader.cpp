#include "core/json_object_reader.h"

#include <charconv>
#include <iterator>

namespace flotilla {
namespace {

// Keys come from untrusted documents: messages quote at most this much.
constexpr size_t kMaxQuotedKey = 64;

std::string RangeText(const std::string& min, const std::string& max) {
  return "must be in " + min + ".." + max;
}

// The shortest decimal that reads back as `d`, without an exponent: "200", "99.9999".
std::string DecimalText(double d) {
  char text[400];
  auto [end, ec] = std::to_chars(std::begin(text), std::end(text), d, std::chars_format::fixed);
  return ec == std::errc() ? std::string(text, end) : std::to_string(d);
}

}  // namespace

JsonObjectReader::JsonObjectReader(const Json& object, std::string path, UnknownKeys unknown_keys)
    : object_(object), path_(std::move(path)), unknown_keys_(unknown_keys) {
  if (!object_.is_object()) {
    status_ = InvalidArgument(path_.empty() ? "must be a JSON object"
                                            : path_ + ": must be a JSON object");
  }
}

std::string JsonObjectReader::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void JsonObjectReader::Fail(std::string_view key, std::string_view why) {
  if (status_.ok()) status_ = InvalidArgument(PathOf(key) + ": " + std::string(why));
}

void JsonObjectReader::Require(std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    if (!status_.ok()) return;
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) Fail(key, "required");
  }
}

const Json* JsonObjectReader::Find(std::string_view key) {
  if (!status_.ok()) return nullptr;
  known_.emplace(key);
  auto it = object_.find(key);
  return it == object_.end() || it->is_null() ? nullptr : &*it;
}

const Json* JsonObjectReader::Object(std::string_view key) {
  const Json* v = Find(key);
  if (v != nullptr && !v->is_object()) Fail(key, "must be a JSON object");
  return status_.ok() ? v : nullptr;
}

const Json* JsonObjectReader::Array(std::string_view key) {
  const Json* v = Find(key);
  if (v != nullptr && !v->is_array()) Fail(key, "must be an array");
  return status_.ok() ? v : nullptr;
}

void JsonObjectReader::String(std::string_view key, std::string& out) {
  const Json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_string()) return Fail(key, "must be a string");
  out = v->get<std::string>();
}

void JsonObjectReader::Strings(std::string_view key, std::vector<std::string>& out) {
  const Json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_array()) return Fail(key, "must be an array of strings");
  std::vector<std::string> strings;
  for (const Json& item : *v) {
    if (!item.is_string()) return Fail(key, "must be an array of strings");
    strings.push_back(item.get<std::string>());
  }
  out = std::move(strings);
}

void JsonObjectReader::Bool(std::string_view key, bool& out) {
  const Json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_boolean()) return Fail(key, "must be true or false");
  out = v->get<bool>();
}

void JsonObjectReader::Number(std::string_view key, double& out, double min, double max) {
  const Json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_number()) return Fail(key, "must be a number");
  const double d = v->get<double>();
  if (!(d >= min && d <= max)) return Fail(key, RangeText(DecimalText(min), DecimalText(max)));
  out = d;
}

std::optional<uint64_t> JsonObjectReader::UnsignedIn(std::string_view key, uint64_t min,
                                                     uint64_t max) {
  const Json* v = Find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_unsigned()) {
    Fail(key, "must be an unsigned integer");
    return std::nullopt;
  }
  const uint64_t n = v->get<uint64_t>();
  if (n < min || n > max) {
    Fail(key, RangeText(std::to_string(min), std::to_string(max)));
    return std::nullopt;
  }
  return n;
}

std::optional<int64_t> JsonObjectReader::IntIn(std::string_view key, int64_t min, int64_t max) {
  const Json* v = Find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) {
    Fail(key, "must be an integer");
    return std::nullopt;
  }
  // An unsigned value past INT64_MAX is above any max.
  const bool too_big =
      v->is_number_unsigned() &&
      v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const int64_t n = too_big ? 0 : v->get<int64_t>();
  if (too_big || n < min || n > max) {
    Fail(key, RangeText(std::to_string(min), std::to_string(max)));
    return std::nullopt;
  }
  return n;
}

Status JsonObjectReader::Finish() const {
  if (!status_.ok() || unknown_keys_ == UnknownKeys::kIgnore) return status_;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (!known_.contains(it.key())) {
      return InvalidArgument("unknown key '" + PathOf(it.key().substr(0, kMaxQuotedKey)) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace flotilla
