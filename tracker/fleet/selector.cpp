#include "tracker/fleet/selector.h"

#include <algorithm>

#include "tracker/api/labels.h"

namespace flotilla::tracker {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

Status BadTerm(std::string_view term, std::string_view why) {
  return InvalidArgument("selector term '" + std::string(term) + "': " + std::string(why) +
                         " (terms: site=LABEL, tag=LABEL, name=LABEL or all, joined by ',')");
}

// Sets a key that a device has one value of; a second, different value
// could match no device.
Status SetSingle(std::string& field, std::string_view value, std::string_view term) {
  if (!field.empty() && field != value) {
    return BadTerm(term, "a device has one, and this selector already names '" + field + "'");
  }
  field = value;
  return Status::Ok();
}

}  // namespace

Result<Selector> Selector::Parse(std::string_view text) {
  Selector selector;
  if (Trim(text).empty()) return InvalidArgument("empty selector (e.g. site=shop-12,tag=window)");
  size_t terms = 0;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view term = Trim(text.substr(0, comma));
    ++terms;
    if (term == "all") {
      selector.all_ = true;
    } else {
      const size_t eq = term.find('=');
      if (term.empty()) return BadTerm(term, "empty");
      if (eq == std::string_view::npos) return BadTerm(term, "no '='");
      const std::string_view key = term.substr(0, eq);
      const std::string_view value = term.substr(eq + 1);
      if (!IsValidLabel(value)) return BadTerm(term, "the value must be 1-64 of [A-Za-z0-9._-]");
      if (key == "site") {
        RETURN_IF_ERROR(SetSingle(selector.site_, value, term));
      } else if (key == "name") {
        RETURN_IF_ERROR(SetSingle(selector.name_, value, term));
      } else if (key == "tag") {
        selector.tags_.emplace(value);
      } else {
        return BadTerm(term, "unknown key '" + std::string(key) + "'");
      }
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (selector.all_ && terms > 1) return BadTerm("all", "stands alone");
  return selector;
}

bool Selector::Matches(const FleetDevice& device) const {
  if (all_) return true;
  if (!site_.empty() && device.site != site_) return false;
  if (!name_.empty() && device.name != name_) return false;
  return std::includes(device.tags.begin(), device.tags.end(), tags_.begin(), tags_.end());
}

std::string Selector::ToString() const {
  if (all_) return "all";
  std::string out;
  auto add = [&out](std::string_view key, const std::string& value) {
    if (!out.empty()) out += ',';
    out.append(key).append("=").append(value);
  };
  if (!site_.empty()) add("site", site_);
  if (!name_.empty()) add("name", name_);
  for (const std::string& tag : tags_) add("tag", tag);
  return out;
}

}  // namespace flotilla::tracker
