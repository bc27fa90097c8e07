"""Build SphereConv2d's compiled CPU kernel ahead of use: ``python -m pano360.nn.build``.

Prints where the kernel is and whether it was built or found; exits 2 with one line if it cannot
be built (SphereConv2d then uses its pure-torch path). ``make`` runs it after installing. The
kernel's folder and key are described in :mod:`pano360.nn._fast` and docs/layers.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

__all__ = ["main"]

_DESCRIPTION = """\
Build the compiled CPU kernel of SphereConv2d now, instead of at its first use (about 50 s,
once per source, torch and python version). It is kept in $PANO360_KERNEL_DIR/<key>/ if that
is set, else $XDG_CACHE_HOME/pano360/kernels/<key>/ or ~/.cache/pano360/kernels/<key>/, and
imported from there without running ninja. Exit status 2 if it cannot be built (SphereConv2d
then uses its slower pure-torch path)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pano360.nn.build", description=_DESCRIPTION)
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if the kernel is already built"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the compiler's commands and output"
    )
    args = parser.parse_args(argv)

    if os.environ.get("PANO360_NO_EXTENSIONS"):
        print("pano360: PANO360_NO_EXTENSIONS is set: not building the SphereConv2d CPU kernel")
        return 0

    from ._fast import describe_error, load_kernel

    start = time.perf_counter()
    try:
        _, path, built = load_kernel(force=args.force, verbose=args.verbose)
    except Exception as error:
        print(
            f"pano360: error: could not build the SphereConv2d CPU kernel ({describe_error(error)}"
            "); SphereConv2d will use its pure-torch path (rerun with --verbose for details)",
            file=sys.stderr,
        )
        return 2
    how = f"built in {time.perf_counter() - start:.1f} s" if built else "found"
    print(f"pano360: SphereConv2d CPU kernel {how}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
