// `flotilla-tracker image ...`: images the tracker publishes, in its layer
// store (docs/layerstore.md).
#include <fmt/core.h>

#include <cstdio>
#include <memory>

#include "layerstore/layer_store.h"
#include "layerstore/report_format.h"
#include "tracker/cli/commands.h"

namespace flotilla::tracker {
namespace {

struct ImageFlags {
  std::string store_dir = "/var/lib/flotilla/tracker/store";
  bool quiet = false;
  std::string path, platform, select, name;
};

int Fail(std::string_view what, const Status& st) {
  fmt::print(stderr, "image {}: {}\n", what, st.ToString());
  return 1;
}

int RunImport(const ImageFlags& f) {
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
    auto p = layerstore::Platform::Parse(f.platform);
    if (!p.ok()) return Fail("import", p.status());
    options.platform = *p;
  }
  auto store = layerstore::LayerStore::Open(f.store_dir);
  if (!store.ok()) return Fail("import", store.status());
  auto image = (*store)->ImportImage(f.path, options);
  if (!image.ok()) return Fail("import", image.status());
  fmt::print("{}", layerstore::FormatImage(*image));
  return 0;
}

int RunList(const ImageFlags& f) {
  auto store = layerstore::LayerStore::Open(f.store_dir);
  if (!store.ok()) return Fail("ls", store.status());
  auto images = (*store)->ListImages();
  if (!images.ok()) return Fail("ls", images.status());
  fmt::print("{}", layerstore::FormatImageTable(*images));
  return 0;
}

int RunRemove(const ImageFlags& f) {
  auto store = layerstore::LayerStore::Open(f.store_dir);
  if (!store.ok()) return Fail("rm", store.status());
  if (Status st = (*store)->RemoveImage(f.name); !st.ok()) return Fail("rm", st);
  auto gc = (*store)->CollectGarbage();
  if (!gc.ok()) return Fail("rm", gc.status());
  fmt::print("removed {}; freed {} layers and {} blobs\n", f.name, gc->layers_removed,
             gc->blobs_removed);
  return 0;
}

}  // namespace

CommandAction RegisterImageCommands(CLI::App& app) {
  auto f = std::make_shared<ImageFlags>();
  auto* image = app.add_subcommand("image", "Import and inspect the images the tracker publishes");
  image->add_option("--store", f->store_dir, "tracker layer store directory")
      ->capture_default_str();
  image->add_flag("-q,--quiet", f->quiet, "no progress lines on stderr");
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
  return [=]() -> int {
    if (!*image) return -1;
    if (*import) return RunImport(*f);
    if (*ls) return RunList(*f);
    if (*rm) return RunRemove(*f);
    return -1;
  };
}

}  // namespace flotilla::tracker
