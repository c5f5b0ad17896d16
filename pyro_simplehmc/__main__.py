"""``python -m pyro_simplehmc`` is the ``simplehmc`` command."""

import sys

from .cli.main import main

sys.exit(main())
