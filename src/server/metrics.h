// /metrics: the server's counters and the scheduler's load in the Prometheus text exposition format.
#pragma once

#include <string>

#include "server/scheduler.h"
#include "server/server_stats.h"

namespace g4 {

std::string metrics_text(const ServerStats& stats, const Scheduler::Load& load);

}  // namespace g4
