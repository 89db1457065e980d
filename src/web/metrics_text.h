// /metrics: a node's view of itself and its cluster in the Prometheus text
// exposition format (version 0.0.4), made from what `roam nodes --json`
// gets from roamd. Pure, so that tests can check it with promtool and by
// value.
#pragma once

#include <string>

#include "control.pb.h"

namespace roam {

// Every metric has a HELP and a TYPE line; names start with `roam_`.
// Per-node gauges carry a `node` label (every node this roamd knows, with
// the load it last heard); counters are this roamd's own.
std::string RenderMetrics(const pb::NodesReply& nodes);

}  // namespace roam
