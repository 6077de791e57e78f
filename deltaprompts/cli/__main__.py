"""`python -m deltaprompts.cli`: the same as the `deltaprompts` command."""

from deltaprompts.cli import main

main()
