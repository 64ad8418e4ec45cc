// Text that the node's and the tracker's CLIs print about the store, kept in
// one place so both binaries say the same thing the same way.
#pragma once

#include <string>
#include <vector>

#include "layerstore/types.h"

namespace flotilla::layerstore {

// One progress line: "progress phase=unpacking item=1/3 bytes=8388608".
// Stable and parseable: tests and scripts read it.
std::string FormatProgress(const Progress& progress);

// A table of images: ID, REFS, PLATFORM, FORMAT, LAYERS.
std::string FormatImageTable(const std::vector<ImageRecord>& images);

// A table of layers: DIFF_ID, STATE, BYTES, ENTRIES.
std::string FormatLayerTable(const std::vector<LayerInfo>& layers);

// An image's record as a multi-line description (for import results).
std::string FormatImage(const ImageRecord& image);

}  // namespace flotilla::layerstore
