"""``python -m curriculens.cli``: the same as the ``curriculens`` console script."""

from curriculens.cli.entry import main

raise SystemExit(main())
