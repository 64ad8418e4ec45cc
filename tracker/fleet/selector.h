// A group's selector: which devices the group holds, by site, tag or name
// (docs/fleet.md, "Selectors"). Parsed from operator text such as
// "site=shop-12,tag=window"; every term must hold.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "core/status.h"

namespace flotilla::tracker {

// A device as selectors and the desired-release rule see it.
struct FleetDevice {
  std::string device_id;
  std::string name;
  std::string site;  // "" when enrolled without one
  std::set<std::string> tags;
};

class Selector {
 public:
  // InvalidArgument, naming the bad term, for anything docs/fleet.md refuses.
  static Result<Selector> Parse(std::string_view text);

  bool Matches(const FleetDevice& device) const;
  // The canonical text: "all", or site, name, then tags in byte order.
  std::string ToString() const;

 private:
  bool all_ = false;
  std::string site_;  // "" matches any site
  std::string name_;  // "" matches any name
  std::set<std::string> tags_;
};

}  // namespace flotilla::tracker
