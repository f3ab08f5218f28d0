"""`python -m vae_gen` is the `vae-gen` command."""

import sys

from .console import main

sys.exit(main())
