"""Images in prompts: where they come from, what type they are, and whether a provider takes them.

A message part ``{image: SOURCE}`` names a file relative to the job file, an ``https://``
URL or a ``data:`` URL. Job validation checks every source (templated ones per data row)
before anything is sent; the bytes are read only when a request is built, one item at a
time, so a job over many images keeps its memory flat. Nothing here ever stores image
bytes: results keep a reference (``[image: images/cat.png sha256:ab12...]``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ErrorCode, ProviderError

MB = 1024 * 1024
# The largest image each protocol takes, in bytes of the image itself (documented limits:
# OpenAI 20 MB per image, Anthropic 5 MB per image, Gemini 20 MB for inline data; Ollama
# documents none, so the same 20 MB keeps a job from sending absurd payloads).
IMAGE_LIMITS: dict[str, int | None] = {"openai": 20 * MB, "anthropic": 5 * MB, "gemini": 20 * MB,
                                       "ollama": 20 * MB, "echo": None}
# Protocols that take an image by URL; the others need its bytes (Ollama takes base64 only).
TAKES_URLS = frozenset({"openai", "anthropic", "gemini", "echo"})
# Gemini's fileData needs the type up front; a URL's only hint is its name.
URL_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
             ".webp": "image/webp"}
SNIFF_BYTES = 16


def sniff(head: bytes) -> str | None:
    """The media type of an image from its first bytes (magic numbers), None when not a supported one."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_url(source: str) -> bool:
    return source.startswith("https://")


def url_type(source: str) -> str | None:
    name = source.split("?", 1)[0].split("#", 1)[0].lower()
    return next((t for ext, t in URL_TYPES.items() if name.endswith(ext)), None)


@dataclass(frozen=True, slots=True)
class ImageData:
    """An image's bytes, read for one request and dropped with it."""

    media_type: str
    data: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.base64}"


class ImageRef:
    """One image part of a rendered message: its source as written, resolved, read only on demand."""

    __slots__ = ("source", "path", "digest")

    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.path = None if is_url(source) or source.startswith("data:") else base / source
        self.digest: str | None = None  # sha256 of the bytes, known once they were read

    def __str__(self) -> str:  # what item keys hash: the source, never the bytes
        return self.source if not self.source.startswith("data:") else data_label(self.source)

    def __repr__(self) -> str:
        return f"ImageRef({str(self)!r})"

    @property
    def url(self) -> str | None:
        return self.source if is_url(self.source) else None

    def reference(self) -> str:
        """How the results' prompt column shows the image."""
        digest = f" sha256:{self.digest[:16]}" if self.digest else ""
        return f"[image: {self}{digest}]"

    def load(self, limit: int | None) -> ImageData:
        """The bytes and type, checked again (the file may have changed since validation)."""
        data, problem = read_image(self.source, self.path, limit)
        if problem is not None or data is None:
            raise ProviderError(ErrorCode.CLIENT_ERROR, f"image {self}: {problem}")
        self.digest = hashlib.sha256(data.data).hexdigest()
        return data


def data_label(source: str) -> str:
    """How a data: URL is named wherever it is shown or stored: its type, never its bytes."""
    head = source[5:].split(",", 1)[0]
    return f"data:{head.split(';', 1)[0] or 'unknown'} URL"


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB // 10 else f"{n} bytes"


def read_image(source: str, path: Path | None, limit: int | None) -> tuple[ImageData | None, str | None]:
    """(the image, None) or (None, what is wrong with it) for a local file or a data: URL."""
    if path is None:
        if not source.startswith("data:"):
            return None, "an image URL has no bytes here"
        head, _, payload = source[5:].partition(",")
        if not head.endswith(";base64"):
            return None, "a data: URL must be base64 (data:image/png;base64,...)"
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None, "the data: URL is not valid base64"
    else:
        try:
            size = path.stat().st_size
            if limit is not None and size > limit:
                return None, f"{_size(size)} is over the limit of {_size(limit)} per image"
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, "file not found (relative to the job file)"
        except IsADirectoryError:
            return None, "is a folder, not an image file"
        except OSError as e:
            return None, f"cannot read it: {e.strerror or e}"
    media_type = sniff(raw[:SNIFF_BYTES])
    if media_type is None:
        return None, "not a PNG, JPEG, GIF or WebP image (judged by its content)"
    if limit is not None and len(raw) > limit:
        return None, f"{_size(len(raw))} is over the limit of {_size(limit)} per image"
    return ImageData(media_type, raw), None


def limit_for(protocol: str, override: int | None) -> int | None:
    """The largest image a provider takes: its file's ``max_image_bytes``, else its protocol's."""
    return override if override is not None else IMAGE_LIMITS.get(protocol)


def image_problem(source: str, base: Path, targets: dict[str, tuple[str, int | None]]) -> str | None:
    """What keeps ``source`` from being sent to every target, or None.

    ``targets``: provider id -> (protocol, image size limit). Reads only a file's first bytes
    and its size, so checking a job over many images stays cheap.
    """
    if source.startswith("http://"):
        return f"image URL {source} must use https://"
    if is_url(source):
        for provider, (protocol, _) in sorted(targets.items()):
            if protocol not in TAKES_URLS:
                return (f"provider '{provider}' ({protocol} protocol) cannot take an image URL; "
                        f"save {source} and give its path")
            if protocol == "gemini" and url_type(source) is None:
                return (f"provider '{provider}' needs the image type of a URL: use a URL ending in "
                        f"{', '.join(URL_TYPES)}, or a local file")
        return None
    if source.startswith("data:"):
        image, problem = read_image(source, None, None)
        if problem is not None or image is None:
            return f"image {data_label(source)}: {problem}"
        size = len(image.data)
    else:
        path = base / source
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(SNIFF_BYTES)
        except FileNotFoundError:
            return f"image file {source} not found (relative to the job file)"
        except IsADirectoryError:
            return f"image {source} is a folder, not an image file"
        except OSError as e:
            return f"cannot read image {source}: {e.strerror or e}"
        if sniff(head) is None:
            return f"image {source} is not a PNG, JPEG, GIF or WebP image (judged by its content)"
    for provider, (_, limit) in sorted(targets.items()):
        if limit is not None and size > limit:
            return (f"image {ImageRef(source, base)} is {_size(size)}, over provider '{provider}''s limit of "
                    f"{_size(limit)} per image")
    return None
