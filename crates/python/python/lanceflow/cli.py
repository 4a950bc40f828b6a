"""The command line, run in-process by the native module.

Arguments, validation, output and exit codes are the Rust CLI's own; this
entry point only adds what Rust cannot do alone: ``--executor ray`` builds a
:class:`~lanceflow.executor.RayExecutor` for the command's tasks.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from . import _native
from .executor import executor_factory


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code, _ = _native.run_cli(["lanceflow", *args], executor_factory(), capture=False)
    except KeyboardInterrupt:
        print("interrupted: nothing was committed", file=sys.stderr)
        return 130
    return int(code)
