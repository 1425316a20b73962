"""`python -m shared <command>`: see shared/cli.py."""

from shared.cli import main

raise SystemExit(main())
