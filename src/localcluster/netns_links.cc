#include "localcluster/netns_links.h"

#include <dirent.h>
#include <unistd.h>

#include "common/file_util.h"
#include "localcluster/child_process.h"

namespace roam::localcluster {

namespace {

// iproute2 lives in /usr/sbin on Debian, which a non-root PATH may lack.
std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(p, X_OK) == 0) return p;
  return "ip";
}

Status Ip(std::vector<std::string> args) {
  args.insert(args.begin(), IpBinary());
  return RunChecked(args);
}

bool LinkExists(const std::string& name) { return ::access(("/sys/class/net/" + name).c_str(), F_OK) == 0; }

}  // namespace

Status CreateBridge(const std::string& name, const std::string& address, int prefix_length) {
  Status st = Ip({"link", "add", name, "type", "bridge", "mcast_snooping", "0"});
  if (!st.ok()) return st;
  // Belt and braces: older iproute2 ignores mcast_snooping on creation.
  std::string snoop = "/sys/class/net/" + name + "/bridge/multicast_snooping";
  if (::access(snoop.c_str(), W_OK) == 0) {
    st = WriteFileInPlace(snoop, "0\n");
    if (!st.ok()) return st;
  }
  st = Ip({"addr", "add", address + "/" + std::to_string(prefix_length), "dev", name});
  if (!st.ok()) return st;
  return Ip({"link", "set", name, "up"});
}

Status CreateNodeVeth(const std::string& host_name, int netns_pid, const std::string& bridge) {
  Status st = Ip({"link", "add", host_name, "type", "veth", "peer", "name", "eth0", "netns",
                  std::to_string(netns_pid)});
  if (!st.ok()) return st;
  st = Ip({"link", "set", host_name, "master", bridge});
  if (!st.ok()) return st;
  return Ip({"link", "set", host_name, "up"});
}

Status DeleteLink(const std::string& name) {
  if (!LinkExists(name)) return Status::Ok();
  Status st = Ip({"link", "del", name});
  // It may have vanished meanwhile (a veth goes with its namespace).
  if (!st.ok() && !LinkExists(name)) return Status::Ok();
  return st;
}

std::vector<std::string> LinksWithPrefix(const std::string& prefix) {
  std::vector<std::string> out;
  DIR* d = ::opendir("/sys/class/net");
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.compare(0, prefix.size(), prefix) == 0) out.push_back(n);
  }
  ::closedir(d);
  return out;
}

Result<bool> SubnetUsedOnHost(int octet) {
  std::string needle = "10.213." + std::to_string(octet) + ".";
  for (std::vector<std::string> args : {std::vector<std::string>{"-o", "-4", "addr", "show"},
                                        std::vector<std::string>{"-4", "route", "show", "table", "all"}}) {
    args.insert(args.begin(), IpBinary());
    Result<CommandOutput> r = RunCommand(args);
    if (!r.ok()) return r.status();
    if (r->output.find(needle) != std::string::npos) return true;
  }
  return false;
}

Status ConfigureNodeNetwork(const std::string& address, int prefix_length) {
  Status st = Ip({"link", "set", "lo", "up"});
  if (!st.ok()) return st;
  st = Ip({"addr", "add", address + "/" + std::to_string(prefix_length), "dev", "eth0"});
  if (!st.ok()) return st;
  st = Ip({"link", "set", "eth0", "up"});
  if (!st.ok()) return st;
  return Ip({"route", "add", "224.0.0.0/4", "dev", "eth0"});
}

}  // namespace roam::localcluster
