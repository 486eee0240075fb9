"""``python -m cnnlab``: the command line (see ``cnnlab.cli``)."""

import sys

from cnnlab.cli import main

sys.exit(main())
