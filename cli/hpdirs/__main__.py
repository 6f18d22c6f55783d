"""`python -m hpdirs` (and `torchrun -m hpdirs learn ...`): the command line."""

from hpdirs_cli.launch import main

main()
