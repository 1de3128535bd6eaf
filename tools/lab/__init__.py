# SPDX-License-Identifier: Apache-2.0
"""xlb's namespace lab (design.md section 4): Lab builds and removes it, servers.py is what
its backends run. Used by tools/xlb-lab and tests/e2e:

    import sys; sys.path.insert(0, "<repo>/tools")
    from lab import Lab
    with Lab(backends=2, ipv6=True) as lab:
        lab.run("cli", ["curl", "-s", f"http://{lab.backend_addresses[0].v4}/"])
"""
from .lab import (DEFAULT_VIPS, Backend, Lab, list_labs, state_path)
from .proc import LabError, arm_deadline

__all__ = ["Lab", "LabError", "Backend", "DEFAULT_VIPS", "list_labs", "state_path", "arm_deadline"]
