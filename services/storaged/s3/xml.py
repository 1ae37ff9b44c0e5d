"""S3's XML: answers built from (tag, value) trees, and the few request bodies S3 takes (Delete, Complete…Upload).

Request bodies are parsed with the standard library's expat, which resolves no external entity and refuses
entity expansion bombs (Python >= 3.11 ships an expat with that protection); anything that is not the expected
document is MalformedXML, as S3 says it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from xml.etree import ElementTree

from shared.s3.errors import S3Error
from shared.s3.requests import xml_text

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
# A node: (tag, text) for a leaf, (tag, children) for an element holding others; None values are left out.
Node = tuple[str, "str | int | bool | Sequence[Node] | None"]


def timestamp(moment: datetime) -> str:
    """ISO 8601 with milliseconds and Z, as S3 writes LastModified and CreationDate."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_text(str(value))


def _render(node: Node, out: list[str]) -> None:
    tag, value = node
    if value is None:
        return
    if isinstance(value, (str, int, bool)):
        out.append(f"<{tag}>{_text(value)}</{tag}>")
        return
    out.append(f"<{tag}>")
    for child in value:
        _render(child, out)
    out.append(f"</{tag}>")


def document(root: str, children: Iterable[Node]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<{root} xmlns="{NAMESPACE}">']
    for child in children:
        _render(child, out)
    out.append(f"</{root}>")
    return "".join(out).encode()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse(body: bytes, root: str) -> ElementTree.Element:
    """The document element of `body`, which must be `root` (in S3's namespace or none)."""
    malformed = S3Error(
        "MalformedXML", f"The XML you provided was not well-formed or did not validate: expected <{root}>"
    )
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise malformed  # S3 takes no document type; refusing it also keeps entity tricks out
    try:
        element = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise malformed from None
    if _local(element.tag) != root:
        raise malformed
    return element


def children(element: ElementTree.Element, tag: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == tag]


def child_text(element: ElementTree.Element, tag: str) -> str | None:
    found = children(element, tag)
    return (found[0].text or "") if found else None
