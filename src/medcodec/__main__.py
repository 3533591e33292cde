"""``python -m medcodec ...``: the same command line as the ``medcodec`` script (:mod:`.cli.main`),
for a virtual environment whose ``bin`` is not on PATH."""

import sys

from .cli.main import main

sys.exit(main())
