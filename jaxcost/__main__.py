"""The ``jaxcost`` command as installed (and ``python -m jaxcost``): the command line (``jaxcost.cli``), with Ctrl-C
ending in one line and status 130 from the first import on, not only once the command runs."""

from __future__ import annotations

import sys

#: ``cli.EXIT_INTERRUPTED``, known here before the command line's modules are imported.
EXIT_INTERRUPTED = 130


def main() -> int:
    """Import the command line and run it; Ctrl-C while its modules or JAX load ends as it does later."""
    try:
        from jaxcost.cli import main as run

        return run()
    except KeyboardInterrupt:
        print("jaxcost: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
