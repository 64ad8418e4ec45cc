#include "layerstore/report_format.h"

#include <cstdio>

namespace flotilla::layerstore {
namespace {

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

}  // namespace

std::string FormatProgress(const Progress& p) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "progress phase=%s item=%zu/%zu bytes=%llu",
                std::string(PhaseName(p.phase)).c_str(), p.item, p.items,
                static_cast<unsigned long long>(p.bytes));
  std::string line = buf;
  if (!p.what.empty()) line += " what=" + std::string(p.what);
  return line;
}

std::string FormatImageTable(const std::vector<ImageRecord>& images) {
  std::string out =
      Pad("ID", 14) + Pad("PLATFORM", 16) + Pad("FORMAT", 16) + Pad("LAYERS", 8) + "REFS\n";
  for (const auto& image : images) {
    out += Pad(image.config_digest.Hex().substr(0, 12), 14) + Pad(image.platform.ToString(), 16) +
           Pad(image.source_format, 16) + Pad(std::to_string(image.layers.size()), 8) +
           Join(image.refs) + "\n";
  }
  return out;
}

std::string FormatLayerTable(const std::vector<LayerInfo>& layers) {
  std::string out = Pad("DIFF_ID", 73) + Pad("STATE", 13) + Pad("BYTES", 14) + "ENTRIES\n";
  for (const auto& l : layers) {
    out += Pad(l.diff_id.ToString(), 73) + Pad(std::string(LayerStateName(l.state)), 13) +
           Pad(std::to_string(l.length), 14) + std::to_string(l.entries) + "\n";
  }
  return out;
}

std::string FormatImage(const ImageRecord& image) {
  std::string out = "image " + image.config_digest.ToString() + "\n";
  if (image.manifest_digest) out += "  manifest " + image.manifest_digest->ToString() + "\n";
  out += "  platform " + image.platform.ToString() + "\n";
  out += "  format " + image.source_format + "\n";
  out += "  refs " + Join(image.refs) + "\n";
  for (size_t i = 0; i < image.layers.size(); ++i) {
    out += "  layer " + std::to_string(i + 1) + " " + image.layers[i].diff_id.ToString() +
           " blob " + image.layers[i].blob_digest.ToString() + " " +
           std::to_string(image.layers[i].blob_size) + " " + image.layers[i].media_type + "\n";
  }
  return out;
}

}  // namespace flotilla::layerstore
