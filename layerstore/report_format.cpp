#include "layerstore/report_format.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace flotilla::layerstore {
namespace {

// The refs of an image, comma-separated; "-" when it has none.
std::string Refs(const std::vector<std::string>& refs) {
  std::string joined = fmt::format("{}", fmt::join(refs, ","));
  return joined.empty() ? "-" : joined;
}

}  // namespace

std::string FormatProgress(const Progress& p) {
  std::string line = fmt::format("progress phase={} item={}/{} bytes={}", PhaseName(p.phase),
                                 p.item, p.items, p.bytes);
  if (!p.what.empty()) line += fmt::format(" what={}", p.what);
  return line;
}

std::string FormatImageTable(const std::vector<ImageRecord>& images) {
  std::string out =
      fmt::format("{:<14}{:<16}{:<16}{:<8}REFS\n", "ID", "PLATFORM", "FORMAT", "LAYERS");
  for (const auto& image : images) {
    out += fmt::format("{:<14}{:<16}{:<16}{:<8}{}\n", image.config_digest.Hex().substr(0, 12),
                       image.platform.ToString(), image.source_format, image.layers.size(),
                       Refs(image.refs));
  }
  return out;
}

std::string FormatLayerTable(const std::vector<LayerInfo>& layers) {
  std::string out = fmt::format("{:<73}{:<13}{:<14}ENTRIES\n", "DIFF_ID", "STATE", "BYTES");
  for (const auto& l : layers) {
    out += fmt::format("{:<73}{:<13}{:<14}{}\n", l.diff_id.ToString(), LayerStateName(l.state),
                       l.length, l.entries);
  }
  return out;
}

std::string FormatImage(const ImageRecord& image) {
  std::string out = "image " + image.config_digest.ToString() + "\n";
  if (image.manifest_digest) out += "  manifest " + image.manifest_digest->ToString() + "\n";
  out += "  platform " + image.platform.ToString() + "\n";
  out += "  format " + image.source_format + "\n";
  out += "  refs " + Refs(image.refs) + "\n";
  for (size_t i = 0; i < image.layers.size(); ++i) {
    out += "  layer " + std::to_string(i + 1) + " " + image.layers[i].diff_id.ToString() +
           " blob " + image.layers[i].blob_digest.ToString() + " " +
           std::to_string(image.layers[i].blob_size) + " " + image.layers[i].media_type + "\n";
  }
  return out;
}

}  // namespace flotilla::layerstore
