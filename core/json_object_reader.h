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
// flotilla's configs and specs an unknown key is a typo, never an extension.
// Formats that let a newer writer add members (state files a downgraded
// program may read, TUF metadata) read with UnknownKeys::kIgnore.
// Duplicate keys never get here: ParseJsonStrict refuses them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/canonical_json.h"
#include "core/enum_names.h"
#include "core/status.h"

namespace flotilla {

enum class UnknownKeys { kRefuse, kIgnore };

class JsonObjectReader {
 public:
  // `path` names `object` in messages: "" for a document's top, "lan",
  // "devices[2]". A value that is not an object is an error at once. Nested
  // readers (Object, Objects) treat unknown keys as this one does.
  JsonObjectReader(const Json& object, std::string path,
                   UnknownKeys unknown_keys = UnknownKeys::kRefuse);
  // The reader keeps a reference to the object: a temporary would dangle.
  JsonObjectReader(Json&& object, std::string path,
                   UnknownKeys unknown_keys = UnknownKeys::kRefuse) = delete;

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
  // One of the names in `names` (core/enum_names.h).
  template <typename Enum, size_t N>
  void Choice(std::string_view key, const EnumName<Enum> (&names)[N], Enum& out) {
    const Json* v = Find(key);
    if (v == nullptr) return;
    auto value = v->is_string() ? ValueOf(names, v->get_ref<const std::string&>()) : std::nullopt;
    if (!value) return Fail(key, "must be " + NameList(names));
    out = *value;
  }

  // The member, for a parser of its own (nullptr when absent or null, or
  // after an error); Object and Array also check its type.
  const Json* Find(std::string_view key);
  const Json* Object(std::string_view key);
  const Json* Array(std::string_view key);

  // Nested objects, each read by `read(JsonObjectReader&)` (which may return a
  // Status) with a reader at "PATH.key" (Object) or "PATH.key[i]" (Objects,
  // for an array of objects), finished afterwards; nothing when absent.
  template <typename Read>
  void Object(std::string_view key, const Read& read) {
    if (const Json* v = Find(key)) {
      JsonObjectReader nested(*v, PathOf(key), unknown_keys_);
      ReadNested(nested, read);
    }
  }
  template <typename Read>
  void Objects(std::string_view key, const Read& read) {
    const Json* array = Array(key);
    for (size_t i = 0; array != nullptr && i < array->size() && status_.ok(); ++i) {
      JsonObjectReader element((*array)[i], PathOf(key) + "[" + std::to_string(i) + "]",
                               unknown_keys_);
      ReadNested(element, read);
    }
  }

  // Records "PATH: why" unless an error came first.
  void Fail(std::string_view key, std::string_view why);
  void Check(bool ok, std::string_view key, std::string_view why) {
    if (!ok) Fail(key, why);
  }

  // The path of this object, and of its member `key`.
  const std::string& path() const { return path_; }
  std::string PathOf(std::string_view key) const;

  // The first error so far.
  const Status& status() const { return status_; }
  // The first error, else (with UnknownKeys::kRefuse) the first member no
  // call asked about.
  Status Finish() const;

 private:
  template <typename Read>
  void ReadNested(JsonObjectReader& nested, const Read& read) {
    Status st;
    if constexpr (std::is_void_v<std::invoke_result_t<const Read&, JsonObjectReader&>>) {
      read(nested);
    } else {
      st = read(nested);
    }
    if (st.ok()) st = nested.Finish();
    if (!st.ok() && status_.ok()) status_ = std::move(st);
  }
  std::optional<uint64_t> UnsignedIn(std::string_view key, uint64_t min, uint64_t max);
  std::optional<int64_t> IntIn(std::string_view key, int64_t min, int64_t max);

  const Json& object_;
  std::string path_;
  UnknownKeys unknown_keys_;
  std::set<std::string, std::less<>> known_;
  Status status_;
};

}  // namespace flotilla
