"""``python -m kdseg.datasets.synthetic_voc``: see :func:`.writer.main`."""

from __future__ import annotations

from .writer import main

raise SystemExit(main())
