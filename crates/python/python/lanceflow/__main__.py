"""``python -m lanceflow ...``: the lanceflow CLI with the Ray executor available."""

from lanceflow.cli import main

raise SystemExit(main())
