"""The metadata of a model (:py:class:`ModelMetadata`): its name, description,
authors and references, printed as a text card.

The class is written in the TorchScript subset of Python and compiled when this
module is imported. It serializes to JSON (``__getstate__`` returns a 1-tuple
holding the JSON string, ``__setstate__`` reads it back), for ``torch.jit.save``
/ ``torch.jit.load`` and for ``pickle`` / ``copy.deepcopy``.

Model-file ABI: TorchScript archives refer to the class by its qualified name
and to its attributes by position. These must never change:

* ``__torch__.metatensor_torch.atomistic._metadata.ModelMetadata``:
  ``name: str``, ``description: str``, ``_authors: List[str]``,
  ``_references: Dict[str, List[str]]``, ``extra: Dict[str, str]``.

Saved instances are stored through ``__getstate__`` (their JSON text), so the
JSON format is part of the ABI as well.
"""

import warnings
from typing import Dict, List, Optional, Tuple

import torch

from ._json_text import (
    _code_points,
    _json_object,
    _json_optional_string,
    _json_string,
    _json_string_array,
    _parse_json,
)
from ._outputs import _check_json_class, _same_class


# ============================================================================ #
# free functions (they never construct the class of this module)


def _references_keys() -> List[str]:
    # also the order in which the references are printed
    return ["model", "architecture", "implementation"]


def _check_authors(authors: List[str]):
    for author in authors:
        if len(author.strip()) == 0:
            raise ValueError("invalid metadata: authors can not be empty strings")


def _check_references(references: Dict[str, List[str]]):
    allowed = _references_keys()
    for key, values in references.items():
        if key not in allowed:
            raise ValueError(
                "invalid metadata: unknown key in references '"
                + key
                + "', expected one of 'implementation', 'architecture' or 'model'"
            )
        for value in values:
            if len(value.strip()) == 0:
                raise ValueError(
                    "invalid metadata: references can not be empty strings "
                    + "(in '"
                    + key
                    + "')"
                )


def _references_equal(
    first: Dict[str, List[str]], second: Dict[str, List[str]]
) -> bool:
    if len(first) != len(second):
        return False
    for key, values in first.items():
        if key not in second:
            return False
        if values != second[key]:
            return False
    return True


def _extra_equal(first: Dict[str, str], second: Dict[str, str]) -> bool:
    if len(first) != len(second):
        return False
    for key, value in first.items():
        if key not in second:
            return False
        if value != second[key]:
            return False
    return True


def _text_width(text: str) -> int:
    return len(_code_points(text))


def _wrap(text: str, first_prefix: str, next_prefix: str) -> List[str]:
    """Word-wrap ``text`` to 80 columns, each line of the output starting with
    ``first_prefix`` (first line) or ``next_prefix`` (other lines). Line breaks
    in ``text`` are kept."""
    width = 80
    lines: List[str] = []
    prefix = first_prefix
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            if len(word) == 0:
                continue
            if _text_width(prefix) + _text_width(word) > width:
                raise ValueError(
                    "can not wrap text to 80 columns: the word '"
                    + word
                    + "' is too long"
                )
            if len(line) == 0:
                line = prefix + word
            elif _text_width(line) + 1 + _text_width(word) > width:
                lines.append(line)
                prefix = next_prefix
                line = prefix + word
            else:
                line += " " + word
        if len(line) == 0:
            line = prefix.rstrip()
        lines.append(line)
        prefix = next_prefix
    return lines


def _underline(title: str, character: str) -> str:
    return "".join([character for _ in range(_text_width(title))])


class ModelMetadata:
    """Metadata about a model: its name, description, authors and the
    references to cite when using it.

    :param name: the name of the model
    :param description: a description of the model
    :param authors: the authors of the model (non-empty strings)
    :param references: references to cite, under the keys ``"model"`` (this
        specific model), ``"architecture"`` (the architecture of the model) and
        ``"implementation"`` (the software implementing it)
    :param extra: any other metadata, as strings
    """

    def __init__(
        self,
        name: str = "",
        description: str = "",
        authors: Optional[List[str]] = None,
        references: Optional[Dict[str, List[str]]] = None,
        extra: Optional[Dict[str, str]] = None,
    ):
        self.name: str = name
        self.description: str = description
        all_authors: List[str] = []
        if authors is not None:
            for author in authors:
                all_authors.append(author)
        _check_authors(all_authors)
        self._authors: List[str] = all_authors

        all_references: Dict[str, List[str]] = {}
        if references is not None:
            for key, values in references.items():
                copy: List[str] = []
                for value in values:
                    copy.append(value)
                all_references[key] = copy
        _check_references(all_references)
        self._references: Dict[str, List[str]] = all_references

        all_extra: Dict[str, str] = {}
        if extra is not None:
            for key, value in extra.items():
                all_extra[key] = value
        self.extra: Dict[str, str] = all_extra

    @property
    def authors(self) -> List[str]:
        """The authors of the model."""
        return self._authors

    @authors.setter
    def authors(self, authors: List[str]):
        _check_authors(authors)
        self._authors = authors

    @property
    def references(self) -> Dict[str, List[str]]:
        """The references to cite when using the model, under the keys
        ``"model"``, ``"architecture"`` and ``"implementation"``."""
        return self._references

    @references.setter
    def references(self, references: Dict[str, List[str]]):
        _check_references(references)
        self._references = references

    def __eq__(self, other: "ModelMetadata") -> bool:
        if not torch.jit.is_scripting():
            if not _same_class(self, other):
                return False
        return (
            self.name == other.name
            and self.description == other.description
            and self._authors == other._authors
            and _references_equal(self._references, other._references)
            and _extra_equal(self.extra, other.extra)
        )

    def __ne__(self, other: "ModelMetadata") -> bool:
        return not self.__eq__(other)

    def _to_json(self, depth: int) -> str:
        reference_keys: List[str] = []
        reference_values: List[str] = []
        for key, values in self._references.items():
            reference_keys.append(key)
            reference_values.append(_json_string_array(values, depth + 2))

        extra_keys: List[str] = []
        extra_values: List[str] = []
        for key, value in self.extra.items():
            extra_keys.append(key)
            extra_values.append(_json_string(value))

        return _json_object(
            ["class", "name", "description", "authors", "references", "extra"],
            [
                _json_string("ModelMetadata"),
                _json_string(self.name),
                _json_string(self.description),
                _json_string_array(self._authors, depth + 1),
                _json_object(reference_keys, reference_values, depth + 1),
                _json_object(extra_keys, extra_values, depth + 1),
            ],
            depth,
        )

    def __getstate__(self) -> Tuple[str]:
        return (self._to_json(0),)

    def __setstate__(self, state: Tuple[str]):
        document = _parse_json(state[0])
        _check_json_class(document, "ModelMetadata")
        root = 0

        name = _json_optional_string(document, root, "name")
        description = _json_optional_string(document, root, "description")
        authors: List[str] = []
        if document.has(root, "authors"):
            authors = document.string_list(document.get(root, "authors"), "'authors'")

        references: Dict[str, List[str]] = {}
        if document.has(root, "references"):
            node = document.get(root, "references")
            keys = document.object_keys(node, "'references'")
            children = document.children[node]
            for i in range(len(keys)):
                references[keys[i]] = document.string_list(
                    children[i], "'references." + keys[i] + "'"
                )

        extra: Dict[str, str] = {}
        if document.has(root, "extra"):
            node = document.get(root, "extra")
            keys = document.object_keys(node, "'extra'")
            children = document.children[node]
            for i in range(len(keys)):
                extra[keys[i]] = document.string(children[i], "'extra." + keys[i] + "'")

        _check_authors(authors)
        _check_references(references)
        self.name = name
        self.description = description
        self._authors = authors
        self._references = references
        self.extra = extra

    def __str__(self) -> str:
        if len(self.name) == 0:
            title = "This is an unamed model"
        else:
            title = "This is the " + self.name + " model"
        lines: List[str] = [title, _underline(title, "=")]

        if len(self.description) != 0:
            lines.append("")
            for line in _wrap(self.description, "", ""):
                lines.append(line)

        if len(self._authors) != 0:
            lines.append("")
            lines.append("Model authors")
            lines.append("-------------")
            lines.append("")
            for author in self._authors:
                for line in _wrap(author, "- ", "  "):
                    lines.append(line)

        has_references = False
        for values in self._references.values():
            if len(values) != 0:
                has_references = True

        if has_references:
            lines.append("")
            lines.append("Model references")
            lines.append("----------------")
            lines.append("")
            lines.append("Please cite the following references when using this model:")
            for key in _references_keys():
                if key not in self._references:
                    continue
                values = self._references[key]
                if len(values) == 0:
                    continue
                if key == "model":
                    lines.append("- about this specific model:")
                elif key == "architecture":
                    lines.append("- about the architecture of this model:")
                else:
                    lines.append("- about the implementation of this model:")
                for reference in values:
                    for line in _wrap(reference, "  * ", "    "):
                        lines.append(line)

        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()


# compile the class now; TorchScript resolves names through the frame calling
# `torch.jit.script`, so this must stay here
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.jit.script(ModelMetadata)
