#include "core/canonical_json.h"

#include <set>
#include <vector>

namespace flotilla {
namespace {

// Checks well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

Status AppendString(std::string_view s, std::string& out) {
  if (!IsValidUtf8(s)) return InvalidArgument("canonical JSON: string is not valid UTF-8");
  out += '"';
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return Status::Ok();
}

Status Append(const Json& v, std::string& out) {
  switch (v.type()) {
    case Json::value_t::null:
      out += "null";
      return Status::Ok();
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return Status::Ok();
    case Json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      return Status::Ok();
    case Json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      return Status::Ok();
    case Json::value_t::number_float:
      return InvalidArgument("canonical JSON has no floating-point numbers");
    case Json::value_t::string:
      return AppendString(v.get_ref<const std::string&>(), out);
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ',';
        first = false;
        RETURN_IF_ERROR(Append(item, out));
      }
      out += ']';
      return Status::Ok();
    }
    case Json::value_t::object: {
      // nlohmann's object is a std::map: iteration is in byte order of the keys.
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ',';
        first = false;
        RETURN_IF_ERROR(AppendString(it.key(), out));
        out += ':';
        RETURN_IF_ERROR(Append(it.value(), out));
      }
      out += '}';
      return Status::Ok();
    }
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  return InvalidArgument("canonical JSON: value of an unsupported type");
}

}  // namespace

Result<std::string> CanonicalJson(const Json& value) {
  std::string out;
  RETURN_IF_ERROR(Append(value, out));
  return out;
}

Result<Json> ParseJsonStrict(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return ResourceExhausted("JSON document of " + std::to_string(text.size()) +
                             " bytes exceeds the limit of " + std::to_string(limits.max_bytes));
  }
  std::vector<std::set<std::string>> keys_per_object;
  std::string problem;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (!problem.empty()) return false;
    if (depth > limits.max_depth) {
      problem = "JSON nesting deeper than " + std::to_string(limits.max_depth);
      return false;
    }
    switch (event) {
      case Json::parse_event_t::object_start:
        keys_per_object.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!keys_per_object.empty()) keys_per_object.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys_per_object.back().insert(parsed.get<std::string>()).second) {
          problem = "duplicate JSON key '" + parsed.get<std::string>().substr(0, 64) + "'";
          return false;
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json result;
  try {
    result = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("malformed JSON: ") + e.what());
  }
  if (!problem.empty()) return InvalidArgument(problem);
  if (result.is_discarded()) return InvalidArgument("malformed JSON");
  return result;
}

}  // namespace flotilla
