"""Write every synthetic capture plus expected.json.

    python -m tests.synth.build [OUTDIR]      (run from the repo root; default sample_pcaps/synth)

Deterministic: running it twice gives byte-identical files.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from . import build as _build_fn
from . import write_all

DEFAULT_OUTDIR = Path("sample_pcaps/synth")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    outdir = Path(args[0]) if args else DEFAULT_OUTDIR
    expected = write_all(outdir)
    total = sum((outdir / f).stat().st_size for f in expected)
    print(f"wrote {len(expected)} captures ({total / 1e6:.2f} MB) and expected.json to {outdir}")
    return 0


class _CallableModule(types.ModuleType):
    """Importing this module sets ``tests.synth.build`` to the module, shadowing the
    package's ``build(name)`` function; keep ``tests.synth.build(name)`` working anyway."""

    def __call__(self, name: str):
        return _build_fn(name)


if __name__ == "__main__":
    sys.exit(main())
else:
    sys.modules[__name__].__class__ = _CallableModule
