// The flotilla-node command line.
#pragma once

namespace flotilla::node {

// Parses argv, runs the chosen subcommand and returns the process exit code.
int RunCli(int argc, char** argv);

}  // namespace flotilla::node
