#include "node/control/host_port.h"

namespace flotilla::node {

Status SplitHostPort(std::string_view text, std::string& host, uint16_t& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    return InvalidArgument("'" + std::string(text) + "' is not host:port");
  }
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string_view p = text.substr(colon + 1);
  if (h.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(p)) > 65535) {
    return InvalidArgument("'" + std::string(text) + "' is not host:port");
  }
  host = std::string(h);
  port = static_cast<uint16_t>(std::stoul(std::string(p)));
  return Status::Ok();
}

}  // namespace flotilla::node
