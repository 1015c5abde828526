"""Reading the YAML files srunit is given (presets, config files, a run's config.yaml) within bounds.

``yaml.safe_load`` takes the last of two equal keys without a word, turns a 10,000-digit integer into
a ValueError of Python's own and a deeply nested document into a RecursionError. `load_yaml` refuses
all three with a `ConfigError` that names the file, the line and the fix.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from srunit.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "YamlDocument", "load_yaml", "read_yaml"]

MAX_DEPTH = 64  # nested mappings and lists; a config has 3
MAX_INT_DIGITS = 30  # an int64 has 19 digits; more is never a size, a count or a seed srunit can use


class _Refused(Exception):
    """What the loader refuses, with the line; `load_yaml` adds the file and raises a ConfigError."""


def _line(node: Node) -> str:
    return f"line {node.start_mark.line + 1}"


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys, integer literals of more than MAX_INT_DIGITS digits and
    documents nested more than MAX_DEPTH levels deep."""

    _depth = 0

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._merged_pairs: dict[int, int] = {}  # id of a flattened mapping node -> the merged pairs it starts with

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep; a config needs 3 "
                               f"(section, key, value)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        merges = 0
        for key_node, _ in node.value[self._merged_pairs.get(id(node), 0):]:  # its own keys (merged ones may repeat)
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden here
                merges += 1
                if merges > 1:  # a repeated key like any other; YAML readers disagree on which merge wins
                    raise _Refused(f"{_line(key_node)}: the merge key '<<' appears twice in one mapping; merge "
                                   f"several mappings with one key (<<: [*first, *second], the first one's keys "
                                   f"winning)")
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            if duplicate:
                raise _Refused(f"{_line(key_node)}: the key {key!r} appears twice in one mapping; keep one of "
                               f"the two (YAML would silently use the last)")
        return super().construct_mapping(node, deep=deep)

    def flatten_mapping(self, node: MappingNode) -> None:
        # YAML's merge rule: `<<: [*a, *b]` takes the keys of a, then those of b that a lacks; the mapping's own keys
        # override every merged one. PyYAML drops a repeated key by the identity of its string, so a key longer than
        # Python interns (`lambda_nce`) set in both took the LAST mapping's value; and a merged mapping that merges
        # another itself (`m: &m {<<: *b, x: 2}`, then `<<: *m`) gave b's x, not m's own, where the value of m is
        # {x: 2}. Each merged mapping is merged as the mapping it is (its own keys over its merged ones); the merged
        # pairs come first in the flattened node, the own keys after them.
        if id(node) in self._merged_pairs:  # flattened before: an anchor merged twice, or built after a merge
            return
        sources: list[list[tuple[Node, Node]]] = []
        own = []
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.tag == "tag:yaml.org,2002:value":  # `=` as a key, as SafeLoader reads it
                    key_node.tag = "tag:yaml.org,2002:str"
                own.append((key_node, value_node))
                continue
            items = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for item in items:
                if not isinstance(item, MappingNode):
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"expected a mapping or a list of mappings for merging, but found "
                                           f"{item.id}", item.start_mark)
                self.flatten_mapping(item)
                sources.append(_as_merged(item))
        seen: set[Any] = set()
        kept = []
        for pairs in sources:  # an earlier mapping's key wins over a later one's
            for key_node, value_node in pairs:
                if (key := _key_of(key_node)) not in seen:
                    seen.add(key)
                    kept.append((key_node, value_node))
        node.value = kept + own
        self._merged_pairs[id(node)] = len(kept)

    def construct_yaml_int(self, node: Node) -> int:
        digits = sum(c.isalnum() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise _Refused(f"{_line(node)}: an integer of {digits} digits; no srunit option takes more than "
                           f"{MAX_INT_DIGITS}, fix the value")
        text = str(node.value).replace("_", "").lstrip("+-")
        value = super().construct_yaml_int(node)
        if ":" in text:  # YAML 1.1 base 60: `steps: 1:30` is 90
            raise _Refused(_ambiguous(node, value, "base 60"))
        if len(text) > 1 and text.isdigit() and text[0] == "0":  # YAML 1.1 octal: `seed: 010` is 8, `name: 007` 7
            raise _Refused(_ambiguous(node, value, "octal", int(node.value.replace("_", ""), 10)))
        if text[:2].lower() in ("0x", "0b"):  # `steps: 0x10` was 16 where `--train.steps 0x10` is refused
            reading = "hexadecimal" if text[1] in "xX" else "binary"
            raise _Refused(_ambiguous(node, value, reading, how=f"as {value}"))
        return value

    def construct_yaml_float(self, node: Node) -> float:
        value = super().construct_yaml_float(node)
        if ":" in str(node.value):  # `lr: 1:30.0` is 90.0
            raise _Refused(_ambiguous(node, value, "base 60"))
        return value


def _key_of(key_node: Node) -> Any:
    """What tells two keys of a mapping node apart: a scalar's tag and text, any other key's node."""
    return (key_node.tag, key_node.value) if isinstance(key_node, ScalarNode) else id(key_node)


def _as_merged(node: MappingNode) -> list[tuple[Node, Node]]:
    """The pairs of the flattened mapping ``node`` as its value holds them: its own keys over its merged ones (each
    key once, at its first place)."""
    last = {_key_of(key_node): value_node for key_node, value_node in node.value}
    pairs, seen = [], set()
    for key_node, _ in node.value:
        if (key := _key_of(key_node)) not in seen:
            seen.add(key)
            pairs.append((key_node, last[key]))
    return pairs


def _ambiguous(node: Node, value: object, reading: str, decimal: int | None = None,
               how: str = "without a leading zero or a colon") -> str:
    """The message for a YAML 1.1 number whose value is not what its digits say in decimal (PyYAML follows YAML 1.1;
    the command line reads `--train.steps 010` as 10 and refuses `0x10`)."""
    meant = f", not {decimal}" if decimal is not None and decimal != value else ""
    return (f"{_line(node)}: {node.value} is {value} in YAML ({reading}){meant}; write the number in decimal "
            f"{how}, or quote it where a name is meant")


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:float", _BoundedLoader.construct_yaml_float)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")


def load_yaml(text: str, origin: str) -> Any:
    """The YAML document ``text`` (None for an empty one), read with `_BoundedLoader`.

    Raises:
        ConfigError: not valid YAML, a duplicate key, an over-long integer, a YAML 1.1 octal (``010``), base-60
            (``1:30``), hexadecimal (``0x10``) or binary (``0b101``) number, or too deep a nesting,
            naming ``origin`` (the file or preset) and the line.
    """
    return read_yaml(text, origin).data


@dataclasses.dataclass(frozen=True)
class YamlDocument:
    """A YAML document as `read_yaml` reads it: its data and the words its unquoted scalars were written as."""

    data: Any
    # The word each unquoted boolean of a mapping was written as, by dotted key ({"train.name": "yes"}): YAML reads
    # yes, on and true alike as True; an error about the value quotes the user's own word.
    booleans: dict[str, str]
    # The text each unquoted number was written as ({"train.name": "0x1f"}): YAML reads 0x1f as 31, 1.50 as 1.5 and
    # .NaN as nan, so an option that takes text would get another string than the one written.
    numbers: dict[str, str]


def read_yaml(text: str, origin: str) -> YamlDocument:
    """``text`` read as `load_yaml` reads it, with the words of its unquoted booleans and numbers, from one parse.

    Every call returns its own copy: a caller may change the data. The parse of a text of up to 64 kB is kept (the
    last 32 texts, 2 MB at most): `load_config` reads the same presets again and again (a base: chain, each run and
    test), and PyYAML's parser is pure Python.

    Raises:
        ConfigError: as `load_yaml`.
    """
    if len(text) > _KEPT_TEXT_CHARS:
        return _read_yaml.__wrapped__(text, origin)
    return copy.deepcopy(_read_yaml(text, origin))


_KEPT_TEXT_CHARS = 64 * 1024  # a preset or a run's config.yaml is a few kB


@functools.lru_cache(maxsize=32)
def _read_yaml(text: str, origin: str) -> YamlDocument:
    loader = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters already
        root = loader.get_single_node()
        if root is not None and _expanded_size(root) > MAX_EXPANDED:
            raise _Refused(f"its aliases (*name) expand to more than {MAX_EXPANDED:,} values; a config holds a few "
                           f"hundred")
        data = loader.construct_document(root) if root is not None else None
    except _Refused as err:
        raise ConfigError(f"{origin}: {err}") from None
    except yaml.MarkedYAMLError as err:  # its str() is 4 lines naming "<unicode string>", not the file
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = ", ".join(str(part) for part in (err.context, err.problem) if part)
        raise ConfigError(f"{origin} is not valid YAML: {where}{what}; fix that line") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin} is not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:  # deep nesting inside a flow collection the composer parses recursively
        raise ConfigError(f"{origin}: nested too deeply to read (more than {MAX_DEPTH} levels); a config needs "
                          f"3") from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(data, _unquoted_words(root, (_BOOL_TAG,), in_lists=True),
                        _unquoted_words(root, _NUMBER_TAGS, in_lists=False))


MAX_EXPANDED = 100_000  # values of a document with its aliases expanded: a few lines of aliases can make billions


def _expanded_size(root: Node) -> int:
    """How many values ``root`` holds with every alias expanded, counted up to MAX_EXPANDED + 1: each node once (an
    alias shares its anchor's node), so the count itself never expands; a node inside itself counts once."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # while it is counted: an alias to an enclosing node
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = min(total, MAX_EXPANDED + 1)
        return sizes[id(node)]

    return size(root)


def _unquoted_words(root: Node | None, tags: tuple[str, ...], *, in_lists: bool) -> dict[str, str]:
    """The text of each unquoted scalar of one of ``tags`` in the document ``root``, by dotted key; ``in_lists``: a
    list's first such item under the list's key (an item is checked under the list's key)."""
    words: dict[str, str] = {}

    def walk(node: Node, path: str) -> None:
        if not isinstance(node, MappingNode):
            return
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = f"{path}.{key_node.value}" if path else str(key_node.value)
            if isinstance(value_node, ScalarNode) and value_node.tag in tags:
                words[key] = str(value_node.value)
            elif in_lists and isinstance(value_node, SequenceNode):  # `loggers: [yes]`
                items = [item for item in value_node.value if isinstance(item, ScalarNode) and item.tag in tags]
                if items:
                    words[key] = str(items[0].value)  # the first, the item a check refuses first
            walk(value_node, key)

    if root is not None:
        walk(root, "")
    return words
