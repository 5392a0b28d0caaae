"""The torchrun command line for `facealgebra train` on several processes of this machine, shared by
test_distributed.py and benchmarks/train_throughput.py."""

from __future__ import annotations

import socket
import sys


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun_command(processes: int, *args, script: str = "-m facealgebra") -> list[str]:
    """`python -m torch.distributed.run` with `processes` processes meeting on a free local port, running
    `script` (a module as `-m NAME`, or a file) with `args`."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *script.split(), *map(str, args)]
