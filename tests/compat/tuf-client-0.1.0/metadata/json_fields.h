// Typed, checked access to fields of untrusted JSON objects (internal to metadata/).
//
// Every getter fails with InvalidArgument naming the field when it is missing
// or of the wrong type, so a malformed document never reaches a nlohmann
// exception or an unchecked conversion.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/canonical_json.h"
#include "core/status.h"

namespace flotilla::metadata::json_fields {

Status RequireObject(const Json& value, std::string_view what);
Result<const Json*> GetField(const Json& object, std::string_view key, Json::value_t type);
Result<std::string> GetString(const Json& object, std::string_view key);
// A non-negative integer; floats and negative numbers are refused.
Result<uint64_t> GetUint(const Json& object, std::string_view key);
Result<bool> GetBool(const Json& object, std::string_view key);
Result<const Json*> GetObject(const Json& object, std::string_view key);
Result<const Json*> GetArray(const Json& object, std::string_view key);
bool Has(const Json& object, std::string_view key);

// Refuses keys of `object` outside `allowed` (for flotilla's own schema,
// where an unknown field is a typo or an attack, not an extension).
Status OnlyKeys(const Json& object, std::initializer_list<std::string_view> allowed,
                std::string_view what);

}  // namespace flotilla::metadata::json_fields
