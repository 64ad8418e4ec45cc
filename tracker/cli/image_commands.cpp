// `flotilla-tracker image ...`: images the tracker publishes, in its layer
// store (docs/layerstore.md).
#include <fmt/core.h>

#include <cstdio>
#include <memory>

#include "core/canonical_json.h"
#include "layerstore/layer_store.h"
#include "layerstore/report_format.h"
#include "tracker/cli/commands.h"

namespace flotilla::tracker {
namespace {

struct ImageFlags {
  std::string store_dir = "/var/lib/flotilla/tracker/store";
  bool quiet = false;
  bool json = false;
  std::string path, platform, select, name;
};

Json ImageJson(const layerstore::ImageRecord& image) {
  Json layers = Json::array();
  for (const layerstore::ImageLayer& layer : image.layers) {
    layers.push_back({{"diff_id", layer.diff_id.ToString()},
                      {"blob", layer.blob_digest.ToString()},
                      {"blob_size", layer.blob_size},
                      {"media_type", layer.media_type}});
  }
  return Json{
      {"id", image.config_digest.ToString()},
      {"manifest", image.manifest_digest ? Json(image.manifest_digest->ToString()) : Json(nullptr)},
      {"platform", image.platform.ToString()},
      {"format", image.source_format},
      {"refs", image.refs},
      {"layers", layers}};
}

Status RunImport(layerstore::LayerStore& store, const ImageFlags& f) {
  layerstore::ImportOptions options;
  options.select = f.select;
  options.name = f.name;
  if (!f.quiet) {
    options.progress = [](const layerstore::Progress& p) {
      fmt::print(stderr, "{}\n", layerstore::FormatProgress(p));
      std::fflush(stderr);
    };
  }
  if (!f.platform.empty()) {
    ASSIGN_OR_RETURN(options.platform, layerstore::Platform::Parse(f.platform));
  }
  ASSIGN_OR_RETURN(layerstore::ImageRecord image, store.ImportImage(f.path, options));
  if (f.json) {
    fmt::print("{}\n", ImageJson(image).dump());
  } else if (f.quiet) {
    fmt::print("{}\n", image.config_digest.ToString());  // the image ID alone
  } else {
    fmt::print("{}", layerstore::FormatImage(image));
  }
  return Status::Ok();
}

Status RunList(layerstore::LayerStore& store, const ImageFlags& f) {
  ASSIGN_OR_RETURN(auto images, store.ListImages());
  if (f.json) {
    Json list = Json::array();
    for (const auto& image : images) list.push_back(ImageJson(image));
    fmt::print("{}\n", Json{{"images", list}}.dump());
  } else {
    fmt::print("{}", layerstore::FormatImageTable(images));
  }
  return Status::Ok();
}

Status RunRemove(layerstore::LayerStore& store, const ImageFlags& f) {
  RETURN_IF_ERROR(store.RemoveImage(f.name));
  ASSIGN_OR_RETURN(auto gc, store.CollectGarbage());
  if (f.json) {
    fmt::print("{}\n", Json{{"removed", f.name},
                            {"layers_freed", gc.layers_removed},
                            {"blobs_freed", gc.blobs_removed}}
                           .dump());
  } else {
    fmt::print("removed {}; freed {} layers and {} blobs\n", f.name, gc.layers_removed,
               gc.blobs_removed);
  }
  return Status::Ok();
}

// Opens the store and runs `run` on it; a failure is printed as "image NAME: why".
int RunOnStore(const std::string& name, Status (*run)(layerstore::LayerStore&, const ImageFlags&),
               const ImageFlags& f) {
  auto store = layerstore::LayerStore::Open(f.store_dir);
  Status st = store.ok() ? run(**store, f) : store.status();
  if (!st.ok()) {
    fmt::print(stderr, "image {}: {}\n", name, st.ToString());
    return 1;
  }
  return 0;
}

}  // namespace

CommandAction RegisterImageCommands(CLI::App& app) {
  auto f = std::make_shared<ImageFlags>();
  auto* image = app.add_subcommand("image", "Import and inspect the images the tracker publishes");
  image->add_option("--store", f->store_dir, "tracker layer store directory")
      ->capture_default_str();
  image->add_flag("-q,--quiet", f->quiet,
                  "no progress lines on stderr; import prints the image ID alone (--json: "
                  "the document)");
  image->require_subcommand(1);
  auto* import = image->add_subcommand(
      "import", "Import a docker-archive, oci-archive or OCI layout directory");
  import->add_option("path", f->path, "image file or directory")->required();
  import->add_option("--platform", f->platform,
                     "os/arch[/variant] to take from a multi-platform index (default: this "
                     "machine's; Pis run linux/arm64 and linux/arm/v7)");
  import->add_option("--select", f->select, "which image of an archive holding several");
  import->add_option("--name", f->name, "name to record (default: the archive's)");
  auto* ls = image->add_subcommand("ls", "List imported images");
  auto* rm = image->add_subcommand("rm", "Remove an image name and collect garbage");
  rm->add_option("name", f->name, "ref or image ID")->required();
  for (CLI::App* cmd : {import, ls, rm}) {
    cmd->add_flag("--json", f->json, "Print one JSON document instead of text");
  }
  return [=]() -> int {
    if (!*image) return -1;
    if (*import) return RunOnStore("import", RunImport, *f);
    if (*ls) return RunOnStore("ls", RunList, *f);
    if (*rm) return RunOnStore("rm", RunRemove, *f);
    return -1;
  };
}

}  // namespace flotilla::tracker
