// The human status's formatting helpers.
#include "node/control/status_format.h"

#include <gtest/gtest.h>

namespace flotilla::node {
namespace {

TEST(StatusFormat, UtcDatesAreRightBeforeAndAfter2038) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01 00:00:00");
  EXPECT_EQ(FormatUtc(1796398384), "2026-12-04 15:33:04");
  // One second past a signed 32-bit time_t (where gmtime wraps on armhf).
  EXPECT_EQ(FormatUtc(2147483648), "2038-01-19 03:14:08");
  EXPECT_EQ(FormatUtc(4102444800), "2100-01-01 00:00:00");
  EXPECT_EQ(FormatUtc(951825599), "2000-02-29 11:59:59") << "a leap day";
}

TEST(StatusFormat, DurationsAndBytes) {
  EXPECT_EQ(FormatDuration(12), "12s");
  EXPECT_EQ(FormatDuration(245), "4m05s");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatBytes(512), "512 B");
}

// The import directory and the last import show in the human status only
// when there is one: a node without them prints what it printed before.
TEST(StatusFormat, ImportLinesShowOnlyWhenThereIsAnImport) {
  NodeView view;
  view.device_name = "kiosk-1";
  const std::string plain = FormatStatus(view, 1800000000, false);
  EXPECT_EQ(plain.find("import"), std::string::npos) << plain;

  view.import_dir = {"/media/usb", true, 2};
  view.import = ImportView{.id = 3,
                           .bundle = "/media/usb/web-2.bundle",
                           .source = "import_dir",
                           .step = "rebuilding",
                           .bytes_done = 1024,
                           .bytes_total = 4096,
                           .message = "layer 2a1e45938569 rebuilt (1024 of 4096 B)"};
  const std::string text = FormatStatus(view, 1800000000, false);
  EXPECT_NE(text.find("import_dir /media/usb: present, 2 bundle(s) tried\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("import /media/usb/web-2.bundle: rebuilding 1.0 KiB of 4.0 KiB: layer "
                      "2a1e45938569 rebuilt"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace flotilla::node
