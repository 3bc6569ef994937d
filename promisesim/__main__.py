"""``python -m promisesim``: the same as the ``promisesim`` command."""

import sys

from .cli import main

sys.exit(main())
