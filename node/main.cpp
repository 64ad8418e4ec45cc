#include "node/cli.h"

int main(int argc, char** argv) { return flotilla::node::RunCli(argc, argv); }
