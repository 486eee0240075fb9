"""``python -m cnnlab``: the command line (see ``cnnlab.cli``)."""

import sys

try:
    from cnnlab.cli import main
except KeyboardInterrupt:  # Ctrl-C while the modules load: stop quietly, as the CLI itself does
    sys.exit(130)

sys.exit(main())
