"""``python -m jobtree.cli``: the same as the ``jobtree`` command."""

from . import main

main()
