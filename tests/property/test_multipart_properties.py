"""Properties of the streaming multipart receiver of uploads
(docs/security.md, "Hostile uploads")."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from itertools import pairwise

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ministry.errors import InvalidUpload
from ministry.web.multipart import MultipartReceiver

# RFC 2046 §5.1.1: the characters a boundary may use (a space only inside it).
_BOUNDARY_CHARACTERS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.text(alphabet=_BOUNDARY_CHARACTERS, min_size=1, max_size=70)
# Field names as clients send them inside a quoted string: no quote, backslash or line break.
field_names = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters='"\\\r\n', exclude_categories=["Cc", "Cs"]
    ),
    min_size=1,
    max_size=20,
)


@dataclass
class Sink:
    """Collects the ``content`` part's bytes."""

    data: bytearray = field(default_factory=bytearray)

    def write(self, chunk: bytes) -> None:
        """Keep the chunk."""
        self.data += chunk


@dataclass(frozen=True)
class Form:
    """What a body holds: text fields in order, and optionally the distribution file."""

    boundary: str
    fields: list[tuple[str, str]]
    content: bytes | None

    def body(self) -> bytes:
        """The body as twine writes it."""
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
            for name, value in self.fields
        ]
        if self.content is not None:
            parts.append(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="content"; '
                'filename="demo-1.0.tar.gz"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
                + self.content
                + b"\r\n"
            )
        return b"".join(parts) + f"--{self.boundary}--\r\n".encode()

    def is_well_formed(self) -> bool:
        """No value or file holds the delimiter itself (no client could send such a form)."""
        delimiter = f"\r\n--{self.boundary}".encode()
        payloads = [f"\r\n{value}\r\n".encode() for _, value in self.fields]
        payloads.append(b"\r\n" + (self.content or b"") + b"\r\n")
        return not any(delimiter in payload for payload in payloads)


forms = st.builds(
    Form,
    boundaries,
    st.lists(st.tuples(field_names, st.text(max_size=50)), max_size=6),
    st.none() | st.binary(max_size=300),
).filter(Form.is_well_formed)


def _chunks(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(body), *(cut % (len(body) + 1) for cut in cuts)})
    return [body[start:end] for start, end in pairwise(points)]


def _receive(boundary: str, chunks: list[bytes]) -> tuple[MultipartReceiver, Sink]:
    sink = Sink()
    receiver = MultipartReceiver(boundary, lambda: sink)
    for chunk in chunks:
        receiver.feed(chunk)
    receiver.finish()
    return receiver, sink


@given(forms, st.lists(st.integers(min_value=0), max_size=20))
def test_chunking_never_changes_the_parsed_form(form: Form, cuts: list[int]) -> None:
    """However the network splits the body, the same fields and file bytes come out."""
    receiver, sink = _receive(form.boundary, _chunks(form.body(), cuts))
    expected: dict[str, list[str]] = {}
    for name, value in form.fields:
        expected.setdefault(name, []).append(value)
    assert receiver.fields == expected
    if form.content is None:
        assert receiver.file_parts == [] and receiver.sink is None
    else:
        assert [part.field for part in receiver.file_parts] == ["content"]
        assert bytes(sink.data) == form.content


@st.composite
def damaged_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real body with bytes flipped, cut off, or spliced in, or plain noise."""
    form = draw(forms)
    body = bytearray(form.body())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and at < len(body):
            body[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del body[at:]
        else:
            body[at:at] = draw(
                st.binary(min_size=1, max_size=10) | st.sampled_from([b"\r\n", b"--", b"\r\n\r\n"])
            )
    noise = draw(st.binary(max_size=200))
    return form.boundary, draw(st.sampled_from([bytes(body), noise]))


@given(damaged_bodies(), st.lists(st.integers(min_value=0), max_size=10))
@example(("b", b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n"), [])
@example(("b", b"--b\r\nContent-Disposition: attachment; name=x\r\n\r\nx\r\n--b--\r\n"), [])
@example(("b", b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n\xff\r\n--b--\r\n'), [])
@example(("b", b"--b\r\n\r\n\r\n--b--\r\n"), [])
@example(("b", b"--b--\r\n"), [])
def test_damaged_bodies_parse_or_get_a_400(body: tuple[str, bytes], cuts: list[int]) -> None:
    """A broken body is refused with InvalidUpload (a 400), never another exception."""
    boundary, data = body
    with suppress(InvalidUpload):
        _receive(boundary, _chunks(data, cuts))


def _many_parts(boundary: str, count: int) -> bytes:
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="classifiers"\r\n\r\nx\r\n'
    return part.encode() * count + f"--{boundary}--\r\n".encode()


@settings(max_examples=10)
@given(boundaries, st.integers(2001, 2100), st.integers(1, 5000))
def test_more_parts_than_the_cap_are_refused(boundary: str, count: int, chunk: int) -> None:
    """A body with thousands of parts is a 400, wherever the chunks split it."""
    body = _many_parts(boundary, count)
    chunks = [body[at : at + chunk] for at in range(0, len(body), chunk)]
    try:
        _receive(boundary, chunks)
    except InvalidUpload as error:
        assert "Too many form fields" in error.message
    else:
        raise AssertionError(f"{count} parts were accepted")


@settings(max_examples=10)
@given(boundaries, st.integers(1, 2000))
def test_parts_up_to_the_cap_are_read(boundary: str, count: int) -> None:
    """Up to the cap every part arrives (the cap refuses bombs, not long forms)."""
    receiver, _ = _receive(boundary, [_many_parts(boundary, count)])
    assert receiver.fields == {"classifiers": ["x"] * count}


@settings(max_examples=20)
@given(
    boundaries,
    st.sampled_from(["field", "value"]),
    st.integers(20 * 1024, 200 * 1024),
    st.integers(1, 8192),
)
@example("b", "value", 3_000_000, 4096)  # quadratic, and accepted, before the receiver's own cap
def test_huge_part_headers_are_refused(boundary: str, where: str, size: int, chunk: int) -> None:
    """A part header of many kilobytes is a 400, whatever python-multipart allows."""
    header = (
        f"X-{'a' * size}: 1"
        if where == "field"
        else f'Content-Disposition: form-data; name="x"; {"a" * size}'
    )
    body = f"--{boundary}\r\n{header}\r\n\r\nv\r\n--{boundary}--\r\n".encode()
    chunks = [body[at : at + chunk] for at in range(0, len(body), chunk)]
    try:
        _receive(boundary, chunks)
    except InvalidUpload:
        return
    raise AssertionError(f"a part header of {size} bytes was accepted")


@settings(max_examples=20)
@given(boundaries, st.integers(1, 4000), st.integers(1, 8192))
def test_long_part_headers_within_the_caps_are_read(boundary: str, size: int, chunk: int) -> None:
    """A field name of a few kilobytes is still read: the header cap refuses bombs only."""
    name = "n" * size
    body = Form(boundary, [(name, "v")], None).body()
    chunks = [body[at : at + chunk] for at in range(0, len(body), chunk)]
    receiver, _ = _receive(boundary, chunks)
    assert receiver.fields == {name: ["v"]}
