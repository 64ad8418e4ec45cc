// JsonObjectReader: the one way flotilla reads the members of a JSON object
// (configs, the app spec, state files, scenarios, release and TUF metadata).
//
// A parser reads as the list of its fields:
//
//   JsonObjectReader r(json, "lan");
//   r.Require({"group"});
//   r.Bool("enabled", lan.enabled);
//   r.String("group", lan.group);
//   r.Unsigned("port", lan.port, 1, 65535);
//   RETURN_IF_ERROR(r.Finish());
//
// A member is optional unless Require()d; an absent or null member leaves
// its output as it was (the default). A member of the wrong type or out of
// range is an InvalidArgument that names it by its path from the document's
// top: "lan.port: must be in 1..65535". The first error is kept and later
// calls do nothing, so a parser checks once, at the end. Finish() also
// refuses every member no call asked about ("unknown key 'lan.grup'"): in
// flotilla's own formats an unknown key is a typo, never an extension.
// Formats that allow extensions (TUF metadata) check status() instead.
// Duplicate keys never get here: ParseJsonStrict refuses them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json.h"
#include "core/status.h"

namespace flotilla {

class JsonObjectReader {
 public:
  // `path` names `object` in messages: "" for a document's top, "lan",
  // "devices[2]". A value that is not an object is an error at once.
  JsonObjectReader(const Json& object, std::string path);
  // The reader keeps a reference to the object: a temporary would dangle.
  JsonObjectReader(Json&& object, std::string path) = delete;

  // Fails with "PATH: required" for the first of `keys` that is absent or null.
  void Require(std::initializer_list<std::string_view> keys);

  void String(std::string_view key, std::string& out);
  void Strings(std::string_view key, std::vector<std::string>& out);
  void Bool(std::string_view key, bool& out);
  // A non-negative integer in [min, max]; floats and negatives are refused.
  template <typename T>
  void Unsigned(std::string_view key, T& out, uint64_t min = 0,
                uint64_t max = std::numeric_limits<T>::max()) {
    if (auto n = UnsignedIn(key, min, max)) out = static_cast<T>(*n);
  }
  // An integer in [min, max].
  template <typename T>
  void Int(std::string_view key, T& out, int64_t min = std::numeric_limits<T>::min(),
           int64_t max = std::numeric_limits<T>::max()) {
    if (auto n = IntIn(key, min, max)) out = static_cast<T>(*n);
  }
  // Any number in [min, max].
  void Number(std::string_view key, double& out, double min, double max);

  // The member, for a parser of its own (nullptr when absent or null, or
  // after an error); Object and Array also check its type.
  const Json* Find(std::string_view key);
  const Json* Object(std::string_view key);
  const Json* Array(std::string_view key);

  // Records "PATH: why" unless an error came first.
  void Fail(std::string_view key, std::string_view why);
  void Check(bool ok, std::string_view key, std::string_view why) {
    if (!ok) Fail(key, why);
  }

  // The path of member `key`, for the reader of a nested object.
  std::string PathOf(std::string_view key) const;

  // The first error so far.
  const Status& status() const { return status_; }
  // The first error, else the first member no call asked about.
  Status Finish() const;

 private:
  std::optional<uint64_t> UnsignedIn(std::string_view key, uint64_t min, uint64_t max);
  std::optional<int64_t> IntIn(std::string_view key, int64_t min, int64_t max);

  const Json& object_;
  std::string path_;
  std::set<std::string, std::less<>> known_;
  Status status_;
};

}  // namespace flotilla
