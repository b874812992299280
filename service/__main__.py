"""`python -m service ...` is `pgenrm ...`."""

from service.cli import main

main()
