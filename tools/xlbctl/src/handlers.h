// SPDX-License-Identifier: Apache-2.0
// The handlers of xlbctl's command table (commands.cpp). Each checks its arguments (usage
// errors), makes its API calls and prints JSON (-j) or a table.
#pragma once

#include "xlbctl/commands.h"

namespace xlbctl::handlers {

xlb::Status help(Call& call);
xlb::Status status(Call& call);
xlb::Status vip_list(Call& call);
xlb::Status vip_show(Call& call);
xlb::Status vip_add(Call& call);
xlb::Status vip_del(Call& call);
xlb::Status backend_list(Call& call);
xlb::Status backend_add(Call& call);
xlb::Status backend_del(Call& call);
xlb::Status backend_set(Call& call);
xlb::Status stats(Call& call);
xlb::Status health(Call& call);
xlb::Status plan(Call& call);
xlb::Status lookup(Call& call);
xlb::Status events_push(Call& call);

}  // namespace xlbctl::handlers
