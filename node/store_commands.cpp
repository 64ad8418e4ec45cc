// `flotilla-node store ...`: the device's layer store (docs/layerstore.md).
#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "core/fd.h"
#include "layerstore/delta.h"
#include "layerstore/layer_store.h"
#include "layerstore/report_format.h"
#include "node/commands.h"

namespace flotilla::node {
namespace {

using layerstore::LayerStore;

struct StoreFlags {
  std::string store_dir = "/var/lib/flotilla/store";
  bool quiet = false;
  // import
  std::string image_path, platform, select, name;
  bool allow_devices = false;
  uint64_t max_layer_bytes = 8ull << 30;
  // unpack / tar / path / rm
  std::string diff_id, input = "-", output = "-", image_name;
  uint64_t length = 0;
  // apply-delta / delta-info
  std::string delta_path;
  bool unpack_after = false;
  int max_window_log = layerstore::kDefaultMaxDeltaWindowLog;
};

int Fail(std::string_view what, const Status& st) {
  fmt::print(stderr, "store {}: {}\n", what, st.ToString());
  return 1;
}

layerstore::ProgressFn PrintProgress(const StoreFlags& f) {
  if (f.quiet) return {};
  return [](const layerstore::Progress& p) {
    fmt::print(stderr, "{}\n", layerstore::FormatProgress(p));
    std::fflush(stderr);
  };
}

Result<std::unique_ptr<LayerStore>> OpenStore(const StoreFlags& f) {
  ASSIGN_OR_RETURN(auto store, LayerStore::Open(f.store_dir));
  if (!f.quiet) {
    for (const auto& note : store->recovery_notes()) fmt::print(stderr, "recovered: {}\n", note);
  }
  return store;
}

int RunImport(const StoreFlags& f) {
  layerstore::ImportOptions options;
  options.unpack.allow_devices = f.allow_devices;
  options.unpack.max_layer_bytes = f.max_layer_bytes;
  options.select = f.select;
  options.name = f.name;
  options.progress = PrintProgress(f);
  if (!f.platform.empty()) {
    auto p = layerstore::Platform::Parse(f.platform);
    if (!p.ok()) return Fail("import", p.status());
    options.platform = *p;
  }
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("import", store.status());
  auto image = (*store)->ImportImage(f.image_path, options);
  if (!image.ok()) return Fail("import", image.status());
  fmt::print("{}", layerstore::FormatImage(*image));
  return 0;
}

int RunUnpack(const StoreFlags& f) {
  auto diff_id = Digest::Parse(f.diff_id);
  if (!diff_id.ok()) return Fail("unpack", diff_id.status());
  std::unique_ptr<layerstore::ByteSource> source;
  if (f.input == "-") {
    source = std::make_unique<layerstore::FdByteSource>(STDIN_FILENO, false);
  } else {
    auto opened = layerstore::OpenFileSource(f.input);
    if (!opened.ok()) return Fail("unpack", opened.status());
    source = std::move(*opened);
  }
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("unpack", store.status());
  layerstore::UnpackOptions options;
  options.allow_devices = f.allow_devices;
  auto info = (*store)->UnpackLayer(*source, *diff_id, f.length, options, PrintProgress(f));
  if (!info.ok()) return Fail("unpack", info.status());
  fmt::print("layer {} ready ({} bytes, {} entries)\n", info->diff_id.ToString(), info->length,
             info->entries);
  return 0;
}

int RunTar(const StoreFlags& f) {
  auto diff_id = Digest::Parse(f.diff_id);
  if (!diff_id.ok()) return Fail("tar", diff_id.status());
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("tar", store.status());
  int fd = STDOUT_FILENO;
  if (f.output != "-") {
    fd = ::open(f.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Fail("tar", IOErrorFromErrno("create " + f.output, errno));
  }
  Status st =
      (*store)->WriteLayerTar(*diff_id, [fd](ByteSpan bytes) { return WriteAll(fd, bytes); });
  if (fd != STDOUT_FILENO) ::close(fd);
  return st.ok() ? 0 : Fail("tar", st);
}

int RunList(const StoreFlags& f, bool layers) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("ls", store.status());
  if (layers) {
    auto list = (*store)->ListLayers();
    if (!list.ok()) return Fail("layers", list.status());
    fmt::print("{}", layerstore::FormatLayerTable(*list));
    return 0;
  }
  auto list = (*store)->ListImages();
  if (!list.ok()) return Fail("ls", list.status());
  fmt::print("{}", layerstore::FormatImageTable(*list));
  return 0;
}

int RunVerify(const StoreFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("verify", store.status());
  auto report = (*store)->Verify(PrintProgress(f));
  if (!report.ok()) return Fail("verify", report.status());
  for (const auto& problem : report->problems) fmt::print("problem: {}\n", problem);
  fmt::print("verify: {} layers and {} blobs intact, {} problems\n", report->layers_ok,
             report->blobs_ok, report->problems.size());
  return report->ok() ? 0 : 1;
}

int RunGc(const StoreFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("gc", store.status());
  auto report = (*store)->CollectGarbage();
  if (!report.ok()) return Fail("gc", report.status());
  fmt::print("gc: removed {} layers and {} blobs\n", report->layers_removed, report->blobs_removed);
  return 0;
}

int RunRemove(const StoreFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("rm", store.status());
  Status st = (*store)->RemoveImage(f.image_name);
  if (!st.ok()) return Fail("rm", st);
  fmt::print("removed {}\n", f.image_name);
  return 0;
}

int RunPath(const StoreFlags& f) {
  auto diff_id = Digest::Parse(f.diff_id);
  if (!diff_id.ok()) return Fail("path", diff_id.status());
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("path", store.status());
  auto path = (*store)->LayerTreePath(*diff_id);
  if (!path.ok()) return Fail("path", path.status());
  fmt::print("{}\n", *path);
  return 0;
}

void PrintDeltaHeader(const layerstore::DeltaHeader& h) {
  fmt::print("delta format {} ({} bytes)\n", h.version, h.delta_length);
  for (const Digest& base : h.bases) fmt::print("base   {}\n", base.ToString());
  fmt::print("target {} ({} bytes)\n", h.target.ToString(), h.target_length);
  fmt::print("window 2^{} bytes\n", h.window_log);
  fmt::print("recipe {} -> {} bytes, literal {} -> {} bytes, patches {} bytes\n", h.recipe_bytes,
             h.recipe_length, h.literal_bytes, h.literal_length, h.patch_bytes);
}

int RunDeltaInfo(const StoreFlags& f) {
  auto header = layerstore::ReadDeltaHeaderFile(f.delta_path);
  if (!header.ok()) return Fail("delta-info", header.status());
  PrintDeltaHeader(*header);
  return 0;
}

// Rebuilds the target layer into f.output (verified before it appears); with
// --unpack also adds it to the store through its verifying unpack.
int RunApplyDelta(const StoreFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("apply-delta", store.status());
  auto source = layerstore::OpenFileSource(f.delta_path);
  if (!source.ok()) return Fail("apply-delta", source.status());
  layerstore::DeltaApplyOptions options;
  options.max_window_log = f.max_window_log;
  auto header = layerstore::ApplyDeltaToFile(**store, **source, f.output, options);
  if (!header.ok()) return Fail("apply-delta", header.status());
  fmt::print("rebuilt {} ({} bytes) into {}\n", header->target.ToString(), header->target_length,
             f.output);
  if (!f.unpack_after) return 0;
  auto tar = layerstore::OpenFileSource(f.output);
  if (!tar.ok()) return Fail("apply-delta", tar.status());
  layerstore::UnpackOptions unpack;
  unpack.allow_devices = f.allow_devices;
  auto info = (*store)->UnpackLayer(**tar, header->target, header->target_length, unpack);
  if (!info.ok()) return Fail("apply-delta", info.status());
  fmt::print("layer {} ready ({} entries)\n", info->diff_id.ToString(), info->entries);
  return 0;
}

void AddDeltaCommands(CLI::App* store, StoreFlags& f, CLI::App*& apply, CLI::App*& info) {
  apply = store->add_subcommand(
      "apply-delta", "Rebuild a layer from a delta and the bases in the store (verified)");
  apply->add_option("delta", f.delta_path, "delta file")->required();
  apply->add_option("-o,--output", f.output, "where the rebuilt layer tar goes")->required();
  apply->add_flag("--unpack", f.unpack_after, "also add the layer to the store");
  apply->add_flag("--allow-devices", f.allow_devices, "accept device nodes in the layer");
  apply
      ->add_option("--max-window-log", f.max_window_log,
                   "refuse a delta needing a larger zstd window")
      ->capture_default_str();
  info = store->add_subcommand("delta-info", "Print a delta's header");
  info->add_option("delta", f.delta_path, "delta file")->required();
}

void AddImportFlags(CLI::App* cmd, StoreFlags& f) {
  cmd->add_option("--platform", f.platform,
                  "os/arch[/variant] to take from a multi-platform "
                  "index (default: this machine's)");
  cmd->add_option("--select", f.select, "which image of an archive holding several (tag or ref)");
  cmd->add_option("--name", f.name, "name to record for the image (default: the archive's)");
  cmd->add_flag("--allow-devices", f.allow_devices, "accept device nodes in layers");
  cmd->add_option("--max-layer-bytes", f.max_layer_bytes,
                  "refuse a layer that decompresses to more than this");
}

}  // namespace

CommandAction RegisterStoreCommands(CLI::App& app) {
  auto f = std::make_shared<StoreFlags>();
  auto* store = app.add_subcommand("store", "The layer store: images, layers, verify, GC");
  store->add_option("--store", f->store_dir, "store directory")->capture_default_str();
  store->add_flag("-q,--quiet", f->quiet, "no progress lines on stderr");
  store->require_subcommand(1);
  auto* ls = store->add_subcommand("ls", "List images");
  auto* layers = store->add_subcommand("layers", "List layers and their states");
  auto* verify = store->add_subcommand(
      "verify", "Re-hash every layer and blob; quarantine and report what is corrupt");
  auto* gc = store->add_subcommand("gc", "Remove layers and blobs that no image references");
  auto* import = store->add_subcommand(
      "import", "Import a docker-archive, oci-archive or OCI layout directory");
  import->add_option("image", f->image_path, "image file or directory")->required();
  AddImportFlags(import, *f);
  auto* rm = store->add_subcommand("rm", "Remove an image name (and the image if unnamed then)");
  rm->add_option("name", f->image_name, "ref or image ID")->required();
  auto* unpack = store->add_subcommand(
      "unpack", "Unpack one uncompressed layer tar; kept only if it matches --diff-id/--length");
  unpack->add_option("--diff-id", f->diff_id, "sha256:<hex> the tar must hash to")->required();
  unpack->add_option("--length", f->length, "exact length of the tar in bytes")->required();
  unpack->add_option("input", f->input, "tar file, or - for stdin");
  unpack->add_flag("--allow-devices", f->allow_devices, "accept device nodes in the layer");
  auto* tar = store->add_subcommand("tar", "Write the exact tar of a stored layer");
  tar->add_option("diff_id", f->diff_id, "sha256:<hex>")->required();
  tar->add_option("-o,--output", f->output, "output file, or - for stdout");
  auto* path = store->add_subcommand("path", "Print the unpacked directory of a layer");
  path->add_option("diff_id", f->diff_id, "sha256:<hex>")->required();
  CLI::App *apply_delta = nullptr, *delta_info = nullptr;
  AddDeltaCommands(store, *f, apply_delta, delta_info);
  return [=]() -> int {
    if (!*store) return -1;
    if (*ls) return RunList(*f, false);
    if (*layers) return RunList(*f, true);
    if (*verify) return RunVerify(*f);
    if (*gc) return RunGc(*f);
    if (*import) return RunImport(*f);
    if (*rm) return RunRemove(*f);
    if (*unpack) return RunUnpack(*f);
    if (*tar) return RunTar(*f);
    if (*path) return RunPath(*f);
    if (*apply_delta) return RunApplyDelta(*f);
    if (*delta_info) return RunDeltaInfo(*f);
    return -1;
  };
}

}  // namespace flotilla::node
