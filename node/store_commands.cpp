// `flotilla-node store ...`: the device's layer store (docs/layerstore.md).
#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

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

int StoreFail(std::string_view what, const Status& st) {
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

// Each subcommand's run: its exit code, or the error printed as
// "store NAME: why".
using StoreRun = Result<int> (*)(LayerStore& store, const StoreFlags& f);

Result<int> RunImport(LayerStore& store, const StoreFlags& f) {
  layerstore::ImportOptions options;
  options.unpack.allow_devices = f.allow_devices;
  options.unpack.max_layer_bytes = f.max_layer_bytes;
  options.select = f.select;
  options.name = f.name;
  options.progress = PrintProgress(f);
  if (!f.platform.empty()) {
    ASSIGN_OR_RETURN(options.platform, layerstore::Platform::Parse(f.platform));
  }
  ASSIGN_OR_RETURN(layerstore::ImageRecord image, store.ImportImage(f.image_path, options));
  // Quiet: the image ID alone, for a script to take (as `docker import -q`).
  if (f.quiet) {
    fmt::print("{}\n", image.config_digest.ToString());
  } else {
    fmt::print("{}", layerstore::FormatImage(image));
  }
  return 0;
}

Result<int> RunUnpack(LayerStore& store, const StoreFlags& f) {
  ASSIGN_OR_RETURN(Digest diff_id, Digest::Parse(f.diff_id));
  std::unique_ptr<layerstore::ByteSource> source;
  if (f.input == "-") {
    source = std::make_unique<layerstore::FdByteSource>(STDIN_FILENO);
  } else {
    ASSIGN_OR_RETURN(source, layerstore::OpenFileSource(f.input));
  }
  layerstore::UnpackOptions options;
  options.allow_devices = f.allow_devices;
  ASSIGN_OR_RETURN(auto info,
                   store.UnpackLayer(*source, diff_id, f.length, options, PrintProgress(f)));
  fmt::print("layer {} ready ({} bytes, {} entries)\n", info.diff_id.ToString(), info.length,
             info.entries);
  return 0;
}

Result<int> RunTar(LayerStore& store, const StoreFlags& f) {
  ASSIGN_OR_RETURN(Digest diff_id, Digest::Parse(f.diff_id));
  UniqueFd file;
  if (f.output != "-") {
    file.Reset(::open(f.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file.valid()) return IOErrorFromErrno("create " + f.output, errno);
  }
  int fd = file.valid() ? file.get() : STDOUT_FILENO;
  RETURN_IF_ERROR(
      store.WriteLayerTar(diff_id, [fd](ByteSpan bytes) { return WriteAll(fd, bytes); }));
  return 0;
}

Result<int> RunImages(LayerStore& store, const StoreFlags&) {
  ASSIGN_OR_RETURN(auto images, store.ListImages());
  fmt::print("{}", layerstore::FormatImageTable(images));
  return 0;
}

Result<int> RunLayers(LayerStore& store, const StoreFlags&) {
  ASSIGN_OR_RETURN(auto layers, store.ListLayers());
  fmt::print("{}", layerstore::FormatLayerTable(layers));
  return 0;
}

Result<int> RunVerify(LayerStore& store, const StoreFlags& f) {
  ASSIGN_OR_RETURN(auto report, store.Verify(PrintProgress(f)));
  for (const auto& problem : report.problems) fmt::print("problem: {}\n", problem);
  fmt::print("verify: {} layers and {} blobs intact, {} problems\n", report.layers_ok,
             report.blobs_ok, report.problems.size());
  return report.ok() ? 0 : 1;
}

Result<int> RunGc(LayerStore& store, const StoreFlags&) {
  ASSIGN_OR_RETURN(auto report, store.CollectGarbage());
  fmt::print("gc: removed {} layers and {} blobs\n", report.layers_removed, report.blobs_removed);
  return 0;
}

Result<int> RunRemove(LayerStore& store, const StoreFlags& f) {
  RETURN_IF_ERROR(store.RemoveImage(f.image_name));
  fmt::print("removed {}\n", f.image_name);
  return 0;
}

Result<int> RunPath(LayerStore& store, const StoreFlags& f) {
  ASSIGN_OR_RETURN(Digest diff_id, Digest::Parse(f.diff_id));
  ASSIGN_OR_RETURN(std::string path, store.LayerTreePath(diff_id));
  fmt::print("{}\n", path);
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
  if (!header.ok()) return StoreFail("delta-info", header.status());
  PrintDeltaHeader(*header);
  return 0;
}

// Rebuilds the target layer into f.output (verified before it appears); with
// --unpack also adds it to the store through its verifying unpack.
Result<int> RunApplyDelta(LayerStore& store, const StoreFlags& f) {
  ASSIGN_OR_RETURN(auto source, layerstore::OpenFileSource(f.delta_path));
  layerstore::DeltaApplyOptions options;
  options.max_window_log = f.max_window_log;
  ASSIGN_OR_RETURN(auto header, layerstore::ApplyDeltaToFile(store, *source, f.output, options));
  fmt::print("rebuilt {} ({} bytes) into {}\n", header.target.ToString(), header.target_length,
             f.output);
  if (!f.unpack_after) return 0;
  ASSIGN_OR_RETURN(auto tar, layerstore::OpenFileSource(f.output));
  layerstore::UnpackOptions unpack;
  unpack.allow_devices = f.allow_devices;
  ASSIGN_OR_RETURN(auto info, store.UnpackLayer(*tar, header.target, header.target_length, unpack));
  fmt::print("layer {} ready ({} entries)\n", info.diff_id.ToString(), info.entries);
  return 0;
}

// Opens the store and runs `run` on it, printing a failure as "store NAME: why".
int RunOnStore(const std::string& name, StoreRun run, const StoreFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return StoreFail(name, store.status());
  auto rc = run(**store, f);
  if (!rc.ok()) return StoreFail(name, rc.status());
  return *rc;
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
  store->add_flag("-q,--quiet", f->quiet,
                  "no progress lines on stderr; import prints the image ID alone");
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
  const std::vector<std::pair<CLI::App*, StoreRun>> runs = {
      {ls, RunImages},     {layers, RunLayers},
      {verify, RunVerify}, {gc, RunGc},
      {import, RunImport}, {rm, RunRemove},
      {unpack, RunUnpack}, {tar, RunTar},
      {path, RunPath},     {apply_delta, RunApplyDelta}};
  return [=]() -> int {
    if (!*store) return -1;
    if (*delta_info) return RunDeltaInfo(*f);
    for (const auto& [command, run] : runs) {
      if (*command) return RunOnStore(command->get_name(), run, *f);
    }
    return -1;
  };
}

}  // namespace flotilla::node
