"""``python -m rating_core`` = the ``rating400`` command."""
from .cli import main

main()
