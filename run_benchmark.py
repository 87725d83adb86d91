"""Entry point: ``python run_benchmark.py --suite toy``; see ``benchmark/cli.py``."""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
