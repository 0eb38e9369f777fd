"""`python -m scopewidgets ...` runs the `scopewidgets` command."""

import sys

from .cli import main

sys.exit(main())
