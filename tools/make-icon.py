#!/usr/bin/env python3
"""Writes assets/icon.png (128x128): the package icon, a sparse feature grid (a few lit cells among many dark ones).
Standard library only; run once, the PNG is committed."""
import struct, zlib, random, pathlib

N, CELLS = 128, 8
rng = random.Random(2408)  # fixed: the icon must not change between runs
lit = {(r, c): rng.choice([(255, 183, 3), (251, 86, 7), (58, 134, 255), (131, 56, 236)])
       for r, c in rng.sample([(r, c) for r in range(CELLS) for c in range(CELLS)], 9)}
size = N // CELLS
rows = []
for y in range(N):
    row = bytearray([0])  # filter: none
    for x in range(N):
        r, c = y // size, x // size
        inner = 2 <= y % size < size - 2 and 2 <= x % size < size - 2
        if not inner:
            px = (18, 24, 38)
        else:
            px = lit.get((r, c), (38, 48, 72))
        row += bytes(px) + b"\xff"
    rows.append(bytes(row))

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", N, N, 8, 6, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
out = pathlib.Path(__file__).resolve().parent.parent / "assets" / "icon.png"
out.write_bytes(png)
print(out, len(png), "bytes")
