// The flotilla-tracker command line.
#pragma once

namespace flotilla::tracker {

// Parses argv, runs the chosen subcommand and returns the process exit code.
int RunCli(int argc, char** argv);

}  // namespace flotilla::tracker
