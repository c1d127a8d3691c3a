"""``python -m ministry``: the same as the ``ministry`` command."""

from ministry.cli.main import main

raise SystemExit(main())
