"""Output folders of the dataset tools: srunit never writes into a folder that already holds files.

The rule lives in `srunit._outputs` (with every other rule of where srunit writes), which the inference side
(`srunit.unmatched`) reads too; the dataset tools take it from here."""

from __future__ import annotations

from srunit._outputs import require_empty_output

__all__ = ["require_empty_output"]
