"""``python -m pyro_simplehmc`` is the ``simplehmc`` command."""

import sys

from .cli import main

sys.exit(main())
