"""`python -m srunit ...` is the `srunit` command (and what `torchrun ... -m srunit train ...` starts)."""

from srunit.cli.main import entry

if __name__ == "__main__":
    entry()
