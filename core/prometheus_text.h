// The Prometheus text exposition format 0.0.4: the one writer of flotilla's
// /metrics pages (node and tracker).
//
//   MetricFamily requests(out, "flotilla_http_requests_total", "counter",
//                         "HTTP requests answered, by route and status.");
//   requests.Sample({{"route", "announce"}, {"code", "200"}}, 17);
//
// appends
//
//   # HELP flotilla_http_requests_total HTTP requests answered, by route and status.
//   # TYPE flotilla_http_requests_total counter
//   flotilla_http_requests_total{route="announce",code="200"} 17
//
// Label values and HELP texts are escaped as the format asks, so a value
// that came from outside (a device's name or reported state) cannot break a
// line or forge a sample.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace flotilla {

// A label value as the format wants it: backslash, double quote and newline
// escaped ("a\"b" for a"b).
std::string EscapeLabelValue(std::string_view value);

// One metric family: HELP and TYPE written at construction, then one line per
// Sample. `name`, `type` and label names are the caller's constants.
class MetricFamily {
 public:
  // Pairs of label name and (unescaped) value.
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  MetricFamily(std::string& out, std::string_view name, std::string_view type,
               std::string_view help);

  template <typename Value>
  void Sample(Labels labels, Value value) {
    static_assert(std::is_arithmetic_v<Value>);
    if constexpr (std::is_floating_point_v<Value>) {
      WriteSample(labels, FloatText(value));
    } else {
      WriteSample(labels, std::to_string(value));
    }
  }

 private:
  static std::string FloatText(double value);
  void WriteSample(Labels labels, std::string_view value);

  std::string& out_;
  std::string name_;
};

}  // namespace flotilla
