#include "tracker/cli/cli.h"

int main(int argc, char** argv) { return flotilla::tracker::RunCli(argc, argv); }
