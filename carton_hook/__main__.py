"""`python -m carton_hook MODEL [ARGS...]`: run a packed model.

The loader is not built yet; this entry point says so instead of failing obscurely.
"""

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m carton_hook MODEL [ARGS...]", file=sys.stderr)
        return 2
    print(f"carton: error: {argv[0]}: running a carton is not available in this version yet; "
          "inspect it with `python -m zipfile -l MODEL`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
