// ControlClient: one request to the local roamd over its control socket.
// The socket path is --socket, else $ROAM_SOCKET, else /run/roam/roamd.sock.
#pragma once

#include <string>

#include "common/status.h"
#include "control.pb.h"

namespace roam {

std::string DefaultControlSocket();

// A connected, blocking UNIX socket to roamd (close-on-exec), or why not.
Result<int> ConnectRoamd(const std::string& socket_path);

// Sends `req`, waits for the reply. A reply carrying an error becomes a
// failed Result with that error's text.
Result<pb::ControlReply> CallRoamd(const std::string& socket_path, const pb::ControlRequest& req);

}  // namespace roam
