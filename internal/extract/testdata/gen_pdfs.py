#!/usr/bin/env python3
"""Writes the small hand-made PDFs the unit tests use.

Run from this directory: python3 gen_pdfs.py (needs qpdf for the encrypted
variants: apt-get install qpdf). The output is committed; rerun only to
change a fixture. Each PDF is the smallest file that real readers accept:
one Helvetica font, one content stream per page, an exact xref table.
"""
import subprocess
import zlib


def escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def page_stream(lines):
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append("(%s) Tj T*" % escape(line))
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def build(pages, compress=False):
    """pages: list of pages, each a list of text lines."""
    objs = []  # object bodies, object n at index n-1

    def add(body):
        objs.append(body)
        return len(objs)

    catalog = add(None)
    pages_obj = add(None)
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for lines in pages:
        data = page_stream(lines)
        extra = b""
        if compress:
            data = zlib.compress(data)
            extra = b" /Filter /FlateDecode"
        content = add(b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (pages_obj, font, content)))
    objs[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objs[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, catalog, xref)
    return bytes(out)


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


write("hello.pdf", build([["Hello Tether extraction test", "Second line of the first page"]]))
write("two-pages.pdf", build([["Alpha page one"], ["Bravo page two"]], compress=True))
write("blank.pdf", build([[]]))
# A user password is needed to open this one; the owner-only variant opens
# without one (restrictions only) and must extract normally.
subprocess.run(["qpdf", "--encrypt", "secret-user", "secret-owner", "256", "--", "hello.pdf", "encrypted.pdf"], check=True)
subprocess.run(["qpdf", "--encrypt", "", "secret-owner", "256", "--print=none", "--", "hello.pdf", "owner-only.pdf"], check=True)
