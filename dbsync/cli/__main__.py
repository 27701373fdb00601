"""`python -m dbsync.cli`: the same as the `dbsync` command."""

import sys

from dbsync.cli import main

sys.exit(main())
