// Names of an enum's values: one table serves both directions, so a name
// written to a file, a message or a command line reads back as the same value.
//
//   constexpr EnumName<Strategy> kStrategyNames[] = {
//       {Strategy::kFlotilla, "flotilla"}, {Strategy::kHttpFull, "http-full"}};
//   NameOf(kStrategyNames, Strategy::kHttpFull)  // "http-full"
//   ValueOf(kStrategyNames, "http-full")         // Strategy::kHttpFull
//   NameList(kStrategyNames)                     // "flotilla or http-full"
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace flotilla {

template <typename Enum>
struct EnumName {
  Enum value;
  std::string_view name;
};

// "unknown" for a value the table does not list.
template <typename Enum, size_t N>
constexpr std::string_view NameOf(const EnumName<Enum> (&names)[N], Enum value) {
  for (const EnumName<Enum>& n : names) {
    if (n.value == value) return n.name;
  }
  return "unknown";
}

template <typename Enum, size_t N>
constexpr std::optional<Enum> ValueOf(const EnumName<Enum> (&names)[N], std::string_view name) {
  for (const EnumName<Enum>& n : names) {
    if (n.name == name) return n.value;
  }
  return std::nullopt;
}

// The names for a message: "a, b or c".
template <typename Enum, size_t N>
std::string NameList(const EnumName<Enum> (&names)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += names[i].name;
  }
  return out;
}

}  // namespace flotilla
