// SPDX-License-Identifier: Apache-2.0
// The resources of docs/api.md over a state::ControlPlane.
//
// Errors map to statuses in one place (reply_for): an Error in http_category() keeps its status
// (the handlers' own 404 / 409, also when returned from inside a mutate() change), an invalid
// argument (input, state::validate) is 400, operation_not_supported (a feature this xlbd is not
// configured for, e.g. push without a push source) is 409, anything else (reconcile, maps, reading counters)
// is 500 with the control plane's message.
#pragma once

#include <string>

#include "router.h"
#include "xlb/core/result.h"
#include "xlb/state/control_plane.h"

namespace xlb::api::detail {

// An Error that the API answers with `status`.
Error http_error(int status, std::string message);

Reply reply_for(const Error& error);

// Registers every resource on `router`; the handlers keep a reference to `control`.
void add_routes(Router& router, state::ControlPlane& control);

}  // namespace xlb::api::detail
