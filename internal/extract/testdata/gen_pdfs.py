#!/usr/bin/env python3
"""Writes the small hand-made PDFs the unit tests use.

Run from this directory: python3 gen_pdfs.py [NAME.pdf ...] (needs qpdf for
the encrypted variants: apt-get install qpdf); with names, only those files
are written. The output is committed; rerun only to
change a fixture. Each PDF is the smallest file that real readers accept:
one Helvetica font, one content stream per page, an exact xref table.
"""
import subprocess
import sys
import zlib


def escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def page_stream(lines):
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append("(%s) Tj T*" % escape(line))
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def build(pages, compress=False, fonts=(b"Helvetica",)):
    """pages: list of pages, each a list of text lines or a content stream;
    fonts: the base fonts of /F1, /F2, ..."""
    objs = []  # object bodies, object n at index n-1

    def add(body):
        objs.append(body)
        return len(objs)

    catalog = add(None)
    pages_obj = add(None)
    font_refs = b" ".join(
        b"/F%d %d 0 R" % (i, add(b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>" % name))
        for i, name in enumerate(fonts, 1))
    kids = []
    for page in pages:
        data = page if isinstance(page, bytes) else page_stream(page)
        extra = b""
        if compress:
            data = zlib.compress(data)
            extra = b" /Filter /FlateDecode"
        content = add(b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << %s >> >> /Contents %d 0 R >>" % (pages_obj, font_refs, content)))
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
    if len(sys.argv) > 1 and name not in sys.argv[1:]:
        return
    with open(name, "wb") as f:
        f.write(data)


def shows(*runs, scaled=False):
    """A content stream of runs (x, y, font size, text[, font]), each placed
    with its own text matrix and nothing between them: the way TeX sets
    mathematics, where no space glyph separates the symbols. scaled sets
    the size with the text matrix (1 Tf) instead of Tf."""
    ops = ["BT"]
    for x, y, size, text, *font in runs:
        tf, tm = (1, size) if scaled else (size, 1)
        ops.append("/%s %g Tf %g 0 0 %g %g %g Tm (%s) Tj" % (font[0] if font else "F1", tf, tm, tm, x, y, escape(text)))
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


write("hello.pdf", build([["Hello Tether extraction test", "Second line of the first page"]]))
write("two-pages.pdf", build([["Alpha page one"], ["Bravo page two"]], compress=True))
write("blank.pdf", build([[]]))
# Mathematics as TeX sets it (Helvetica's advance widths: x 500, m 833,
# a 556, b 556 per 1000): each symbol placed on its own, a superscript or
# subscript in a smaller size and another font (Times) on a raised or
# lowered baseline right after its base, and variables an eighth of an em
# apart without a space glyph between them. pdftotext reads "xd + 1",
# "a b c mod", "mn0 = y". The last line has its sizes in the text
# matrix, as some producers write them.
write("math.pdf", build([shows(
    (72, 700, 12, "x"), (78, 704.8, 8, "d", "F2"), (88, 700, 12, "+ 1"),
    (72, 680, 12, "a"), (80.172, 680, 12, "b"), (88.344, 680, 12, "c"), (100, 680, 12, "mod"),
) + b"\n" + shows(
    (72, 660, 12, "m"), (81.996, 657, 8, "n0", "F2"), (96, 660, 12, "= y"), scaled=True,
)], fonts=(b"Helvetica", b"Times-Roman")))
# A user password is needed to open this one; the owner-only variant opens
# without one (restrictions only) and must extract normally.
if len(sys.argv) == 1:
    subprocess.run(["qpdf", "--encrypt", "secret-user", "secret-owner", "256", "--", "hello.pdf", "encrypted.pdf"], check=True)
    subprocess.run(["qpdf", "--encrypt", "", "secret-owner", "256", "--print=none", "--", "hello.pdf", "owner-only.pdf"], check=True)
