// Reading the runtime's own JSON state files (app.json, launch.json,
// running.json, exit.json): bounded, strictly typed, and any fault is
// Corruption that names the file. Members a newer version added are ignored,
// so a downgraded node still reads its state.
#pragma once

#include <cstdint>
#include <string>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"
#include "core/status.h"

namespace flotilla::runtime {

inline constexpr uint64_t kMaxStateFile = 1 << 20;

inline Result<Json> LoadStateJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxStateFile));
  return ParseJsonStrict(text).WithContext(path);
}

// The record `read(JsonObjectReader&, T&)` reads from the file at `path`.
template <typename T, typename Read>
Result<T> LoadStateRecord(const std::string& path, const Read& read) {
  ASSIGN_OR_RETURN(Json json, LoadStateJson(path));
  T record;
  JsonObjectReader reader(json, "", UnknownKeys::kIgnore);
  read(reader, record);
  if (Status st = reader.Finish(); !st.ok()) return Corruption(path + ": " + st.message());
  return record;
}

}  // namespace flotilla::runtime
