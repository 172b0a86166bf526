"""Header checks and a small PNG decoder for the export tests (no Pillow needed)."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_top_rows(data: bytes, max_rows: int = 200) -> np.ndarray:
    """Decode the first ``max_rows`` scanlines of an 8-bit RGB/RGBA PNG -> uint8 [rows, width, channels].

    Exact: each scanline depends only on the ones above it, so a prefix decodes on its own.
    """
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    pos, idat, ihdr = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = ihdr
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG: depth {depth} color {color}"
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    rows = min(height, max_rows)
    raw = zlib.decompressobj().decompress(bytes(idat), (stride + 1) * rows)
    out = np.zeros((rows, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for r in range(rows):
        ftype = raw[r * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=r * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:  # Sub: running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif ftype == 2:  # Up
            cur = (line + prev) % 256
        else:
            cur = np.zeros(stride, dtype=np.int32)
            lst, up = line.tolist(), prev.tolist()
            res = [0] * stride
            for i in range(stride):
                left = res[i - bpp] if i >= bpp else 0
                if ftype == 3:  # Average
                    res[i] = (lst[i] + ((left + up[i]) >> 1)) & 255
                else:  # Paeth
                    ul = up[i - bpp] if i >= bpp else 0
                    p = left + up[i] - ul
                    pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else ul)
                    res[i] = (lst[i] + pred) & 255
            cur = np.asarray(res, dtype=np.int32)
        out[r] = cur
        prev = cur
    return out.reshape(rows, width, bpp)


def assert_png_not_blank(path: Path) -> None:
    data = Path(path).read_bytes()
    width, height = png_size(data)
    assert width >= 400 and height >= 300, (width, height)
    top = png_top_rows(data, 160)[..., :3]  # the title band
    colors = {tuple(px) for px in top.reshape(-1, 3)[::7]}
    assert len(colors) > 10, f"{path.name}: only {len(colors)} colours in the title band (blank?)"
    assert top.min() < 120 and top.max() == 255, f"{path.name}: no dark text on a white page"


def assert_svg(path: Path, expect_text: str = "") -> None:
    text = Path(path).read_text(encoding="utf-8")
    root = ET.fromstring(text)
    assert root.tag.endswith("svg"), root.tag
    if expect_text:
        assert expect_text in text, f"{path.name}: {expect_text!r} not drawn"


def assert_pdf(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data.startswith(b"%PDF-"), data[:8]
    assert data.rstrip().endswith(b"%%EOF")
    assert len(data) > 2000


def assert_html(path: Path, expect_text: str = "") -> None:
    text = Path(path).read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<html") or text.lstrip().lower().startswith("<!doctype html")
    assert "Plotly.newPlot" in text
    local = re.search(r"<script[^>]+src=[\"']([^\"':]+\.js)[\"']", text)  # plotly.js beside the page ...
    js = Path(path).parent / local.group(1) if local else None
    assert "plotly.js v" in (js.read_text(encoding="utf-8")[:2000] if js else text)  # ... or embedded
    assert not re.search(r"<script[^>]+src=[\"']https?:", text)  # and no script from the network
    if expect_text:
        assert expect_text in text
