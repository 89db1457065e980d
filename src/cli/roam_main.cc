#include "localcluster/cluster_commands.h"
int main(int argc, char** argv) {
  CLI::App app{"roam"};
  int code = 0;
  roam::localcluster::AddClusterCommands(app, &code);
  CLI11_PARSE(app, argc, argv);
  return code;
}
