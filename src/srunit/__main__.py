"""`python -m srunit ...` is the `srunit` command (and what `torchrun ... -m srunit train ...` starts)."""

import sys

from srunit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
