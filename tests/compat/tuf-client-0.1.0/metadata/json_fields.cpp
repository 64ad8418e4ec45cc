#include "metadata/json_fields.h"

#include <algorithm>

namespace flotilla::metadata::json_fields {
namespace {

std::string_view TypeName(Json::value_t type) {
  switch (type) {
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_unsigned:
      return "a non-negative integer";
    default:
      return "a value of another type";
  }
}

}  // namespace

Status RequireObject(const Json& value, std::string_view what) {
  if (!value.is_object()) return InvalidArgument(std::string(what) + " must be a JSON object");
  return Status::Ok();
}

bool Has(const Json& object, std::string_view key) {
  return object.is_object() && object.find(key) != object.end();
}

Result<const Json*> GetField(const Json& object, std::string_view key, Json::value_t type) {
  if (!object.is_object())
    return InvalidArgument("expected an object holding '" + std::string(key) + "'");
  auto it = object.find(key);
  if (it == object.end()) return InvalidArgument("missing field '" + std::string(key) + "'");
  // nlohmann stores non-negative integers as unsigned, negative ones as integer.
  if (it->type() != type) {
    return InvalidArgument("field '" + std::string(key) + "' must be " +
                           std::string(TypeName(type)));
  }
  return &*it;
}

Result<std::string> GetString(const Json& object, std::string_view key) {
  ASSIGN_OR_RETURN(const Json* v, GetField(object, key, Json::value_t::string));
  return v->get<std::string>();
}

Result<uint64_t> GetUint(const Json& object, std::string_view key) {
  ASSIGN_OR_RETURN(const Json* v, GetField(object, key, Json::value_t::number_unsigned));
  return v->get<uint64_t>();
}

Result<bool> GetBool(const Json& object, std::string_view key) {
  ASSIGN_OR_RETURN(const Json* v, GetField(object, key, Json::value_t::boolean));
  return v->get<bool>();
}

Result<const Json*> GetObject(const Json& object, std::string_view key) {
  return GetField(object, key, Json::value_t::object);
}

Result<const Json*> GetArray(const Json& object, std::string_view key) {
  return GetField(object, key, Json::value_t::array);
}

Status OnlyKeys(const Json& object, std::initializer_list<std::string_view> allowed,
                std::string_view what) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return InvalidArgument(std::string(what) + ": unknown field '" + it.key().substr(0, 64) +
                             "'");
    }
  }
  return Status::Ok();
}

}  // namespace flotilla::metadata::json_fields
