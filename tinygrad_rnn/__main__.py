"""`python -m tinygrad_rnn ...` is the `tinygrad-rnn` command."""

from .cli import main

raise SystemExit(main())
