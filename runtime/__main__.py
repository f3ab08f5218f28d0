"""`python -m vae_gen` is the `vae-gen` command."""

import sys

from .cli import main

sys.exit(main())
