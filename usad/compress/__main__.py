"""``python -m usad.compress --teacher DIR --preset P --out DIR ...``: ``usad compress`` without the console script."""

from usad.cli.compress import run_from_argv

if __name__ == "__main__":
    run_from_argv()
