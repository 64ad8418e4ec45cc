#include "tracker/cli.h"

int main(int argc, char** argv) { return flotilla::tracker::RunCli(argc, argv); }
