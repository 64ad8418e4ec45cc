#include "core/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <iterator>

namespace flotilla {
namespace {

// Backslash and newline escaped, and the double quote when `quote` (label
// values escape it, HELP texts do not).
std::string Escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) { return Escape(value, true); }

MetricFamily::MetricFamily(std::string& out, std::string_view name, std::string_view type,
                           std::string_view help)
    : out_(out), name_(name) {
  out_.append("# HELP ").append(name).append(" ").append(Escape(help, false)).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

std::string MetricFamily::FloatText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[64];
  auto [end, ec] = std::to_chars(std::begin(text), std::end(text), value);
  return ec == std::errc() ? std::string(text, end) : std::to_string(value);
}

void MetricFamily::WriteSample(Labels labels, std::string_view value) {
  out_ += name_;
  if (labels.size() > 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, text] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_.append(label).append("=\"").append(EscapeLabelValue(text)).append("\"");
    }
    out_ += '}';
  }
  out_.append(" ").append(value).append("\n");
}

}  // namespace flotilla
