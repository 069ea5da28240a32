"""``python -m kubernaut_audit``: the same as the ``kubernaut-audit`` command."""

import sys

from ._cli import main

sys.exit(main())
