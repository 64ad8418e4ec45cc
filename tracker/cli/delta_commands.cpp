// `flotilla-tracker delta create`: one delta artifact from a layer store
// (docs/delta.md); what bench/delta and operators call by hand.
#include <fmt/core.h>

#include <cstdio>
#include <memory>

#include "core/canonical_json.h"
#include "layerstore/delta.h"
#include "layerstore/layer_store.h"
#include "tracker/cli/commands.h"

namespace flotilla::tracker {
namespace {

struct DeltaFlags {
  std::string store_dir;
  std::vector<std::string> bases;
  std::string target;
  std::string output;
  layerstore::DeltaEncodeOptions options;
  bool json = false;
};

Status RunCreate(const DeltaFlags& f) {
  std::vector<Digest> bases;
  for (const std::string& text : f.bases) {
    ASSIGN_OR_RETURN(Digest base, Digest::Parse(text));
    bases.push_back(base);
  }
  ASSIGN_OR_RETURN(Digest target, Digest::Parse(f.target));
  ASSIGN_OR_RETURN(auto store, layerstore::LayerStore::Open(f.store_dir));
  ASSIGN_OR_RETURN(layerstore::DeltaEncodeStats stats,
                   layerstore::EncodeDelta(*store, bases, target, f.output, f.options));
  const auto& h = stats.header;
  if (f.json) {
    Json bases_json = Json::array();
    for (const Digest& base : h.bases) bases_json.push_back(base.ToString());
    fmt::print("{}\n", Json{{"delta", f.output},
                            {"delta_bytes", h.delta_length},
                            {"target", h.target.ToString()},
                            {"target_bytes", h.target_length},
                            {"bases", bases_json},
                            {"files", stats.files},
                            {"copied_files", stats.copied_files},
                            {"patched_files", stats.patched_files},
                            {"patched_input_bytes", stats.patched_input_bytes},
                            {"literal_files", stats.literal_files},
                            {"literal_input_bytes", stats.literal_input_bytes},
                            {"recipe_bytes", h.recipe_bytes},
                            {"literal_bytes", h.literal_bytes},
                            {"patch_bytes", h.patch_bytes},
                            {"window_log", h.window_log}}
                           .dump());
    return Status::Ok();
  }
  fmt::print(
      "delta {} bytes for {} ({} bytes) from {} base(s): {} files, {} copied, {} patched "
      "({} bytes), {} literal ({} bytes); recipe {} B, literal {} B, patches {} B, window 2^{}\n",
      h.delta_length, h.target.ToString(), h.target_length, h.bases.size(), stats.files,
      stats.copied_files, stats.patched_files, stats.patched_input_bytes, stats.literal_files,
      stats.literal_input_bytes, h.recipe_bytes, h.literal_bytes, h.patch_bytes, h.window_log);
  return Status::Ok();
}

}  // namespace

CommandAction RegisterDeltaCommands(CLI::App& app) {
  auto f = std::make_shared<DeltaFlags>();
  auto* delta = app.add_subcommand("delta", "Delta artifacts between layers (docs/delta.md)");
  delta->require_subcommand(1);
  auto* create = delta->add_subcommand("create", "Encode a delta rebuilding --target from --base");
  create->add_option("--store", f->store_dir, "layer store holding the target and bases")
      ->required();
  create->add_option("--base", f->bases, "sha256:<hex> of a base layer (repeatable)")->required();
  create->add_option("--target", f->target, "sha256:<hex> of the layer to rebuild")->required();
  create->add_option("-o,--output", f->output, "delta file to write")->required();
  create->add_option("--level", f->options.level, "zstd level 1..22")->capture_default_str();
  create->add_option("--threads", f->options.threads, "patches compressed N at a time")
      ->capture_default_str();
  create
      ->add_option("--window-log", f->options.window_log,
                   "largest zstd window a device needs (2^N bytes)")
      ->capture_default_str();
  create->add_flag("--json", f->json, "Print one JSON document instead of text");
  return [=]() -> int {
    if (!*delta) return -1;
    if (Status st = RunCreate(*f); !st.ok()) {
      fmt::print(stderr, "delta create: {}\n", st.ToString());
      return 1;
    }
    return 0;
  };
}

}  // namespace flotilla::tracker
