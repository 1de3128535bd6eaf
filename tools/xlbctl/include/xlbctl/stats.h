// SPDX-License-Identifier: Apache-2.0
// Rates from counters. xlbd reports only totals (GET /v1/stats); `xlbctl stats` samples twice,
// an interval apart, and reports the difference per second.
#pragma once

#include <nlohmann/json.hpp>

namespace xlbctl {

// xlbctl's stats document (docs/cli.md, "stats"): `now` (a GET /v1/stats answer) with, on every
// VIP and backend, "packets_per_second" and "bytes_per_second" since `before`, and on every
// backend "rate_share" (its part of the VIP's packet rate), plus "interval_seconds". The rates
// are null without `before`, for a VIP or backend absent from it, and where a counter went
// backwards (the maps were recreated).
nlohmann::json stats_with_rates(const nlohmann::json& now, const nlohmann::json* before,
                                double seconds);

}  // namespace xlbctl
