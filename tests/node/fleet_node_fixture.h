// A fixture for end-to-end tests of one node following its fleet document:
// the real tracker (init, fleet init with an offline fleet root, serve) and
// one flotilla-node (started by the test) deploying one app into its
// built-in runtime, all on loopback.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "tests/node/node_fixture.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {

class FleetNodeTest : public ::testing::Test {
 protected:
  // `name`: the temporary directory's prefix and the images' seed; `app`:
  // the app the node follows.
  FleetNodeTest(std::string name, std::string app) : name_(std::move(name)), app_(std::move(app)) {}

  // A repository (InitRepository) in a new temporary directory; nothing
  // published, no tracker running.
  void SetUp() override;
  // Stops the node, the app's container and the tracker; removes the directory.
  void TearDown() override;

  // Publishes the next release of the app from image `variant`: `command`
  // run by /bin/sh -c, healthy once it has run for a second.
  void PublishApp(const std::string& variant, const std::string& command = "exec sleep 1000");
  // Starts serve, then runs `fleet init` with the fleet root key kept in <dir>/fleet-off.
  void StartTrackerWithFleet();
  // Runs flotilla-tracker ARGS --repository <repo>; expects exit status 0.
  std::string Fleet(const std::string& args);
  // The base config of the node: http-only, following the app, deploying.
  Json NodeConfig(const std::string& name) const;
  // Starts the node with `config` in <dir>/node; waits until it has enrolled.
  void StartNode(const Json& config);
  // The release the runtime runs, as the node's state says (0: none).
  uint64_t Running() const;
  static std::string Text(const std::string& path);

  const std::string name_;
  const std::string app_;
  std::string dir_, repo_, data_;
  TrackerProcess tracker_;
  NodeProcess node_;
};

}  // namespace flotilla::testing
