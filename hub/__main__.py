"""`python -m hub` runs the `carehub` command line."""

from hub.cli import main

main()
