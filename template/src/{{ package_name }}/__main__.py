"""Allow `python -m` as well as the console script."""

from .cli import main

main()
