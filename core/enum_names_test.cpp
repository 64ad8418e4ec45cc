#include "core/enum_names.h"

#include <gtest/gtest.h>

namespace flotilla {
namespace {

enum class Colour { kRed, kGreen, kBlue, kUnlisted };

constexpr EnumName<Colour> kColourNames[] = {
    {Colour::kRed, "red"}, {Colour::kGreen, "green"}, {Colour::kBlue, "blue"}};

TEST(EnumNamesTest, NamesAndValuesRoundTrip) {
  for (const auto& [value, name] : kColourNames) {
    EXPECT_EQ(NameOf(kColourNames, value), name);
    EXPECT_EQ(ValueOf(kColourNames, name), value);
  }
  static_assert(NameOf(kColourNames, Colour::kGreen) == "green");
}

TEST(EnumNamesTest, WhatTheTableDoesNotListIsUnknown) {
  EXPECT_EQ(NameOf(kColourNames, Colour::kUnlisted), "unknown");
  EXPECT_EQ(ValueOf(kColourNames, "Red"), std::nullopt);
  EXPECT_EQ(ValueOf(kColourNames, ""), std::nullopt);
}

TEST(EnumNamesTest, NameListReadsAsASentence) {
  EXPECT_EQ(NameList(kColourNames), "red, green or blue");
  constexpr EnumName<Colour> kOne[] = {{Colour::kRed, "red"}};
  EXPECT_EQ(NameList(kOne), "red");
}

}  // namespace
}  // namespace flotilla
