"""``python -m lenet_cpp``: the command line of ``lenet_cpp.cli``."""

from lenet_cpp.cli import main

raise SystemExit(main())
