#!/usr/bin/env bash
# corpus.sh gathers a corpus of real-world PDFs for the extraction benchmark
# (bench/extract.sh). The PDFs come from Debian documentation packages, so the
# corpus is reproducible on any Debian machine and carries no customer data.
#
# usage: bench/corpus.sh [DIR]   (default /tmp/tether-pdf-corpus)
#
# Installing the packages is idempotent: apt-get skips what is already there.
# Set CORPUS_NO_INSTALL=1 to only collect what is already on the machine.
set -euo pipefail

dir=${1:-/tmp/tether-pdf-corpus}

# Chosen for variety, not size: TeX-made manuals (R, gnuplot, MPFR, gcrypt),
# DocBook/FOP output (xorg-docs), font specimens, a vector-graphics manual
# (asymptote) and a book-length reference (debian-reference).
packages=(
	r-doc-pdf
	gnuplot-doc
	libgcrypt20-doc
	libmpfr-doc
	xorg-docs
	asymptote-doc
	fonts-linuxlibertine
	debian-reference-en
	poppler-utils
)

if [[ ${CORPUS_NO_INSTALL:-} != 1 ]]; then
	missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	if ((${#missing[@]})); then
		# The image may have a stale package list; update once before installing.
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

mkdir -p "$dir"

# Every PDF the packages (and anything else under /usr/share/doc) ship, some gzipped.
{
	for p in "${packages[@]}"; do
		dpkg -L "$p" 2>/dev/null || true
	done
	find /usr/share/doc -type f \( -name '*.pdf' -o -name '*.pdf.gz' \) 2>/dev/null
} | grep -E '\.pdf(\.gz)?$' | while read -r f; do
	# Packages reach the same file through symlinked directories; keep one path.
	[[ -f $f ]] && readlink -f "$f"
done | sort -u | while read -r src; do
	# Name by package path so two manual.pdf files do not collide.
	name=$(echo "${src#/usr/share/}" | tr '/' '_')
	name=${name%.gz}
	dst="$dir/$name"
	[[ -s $dst ]] && continue
	if [[ $src == *.gz ]]; then
		gzip -dc "$src" >"$dst.tmp" && mv "$dst.tmp" "$dst"
	else
		cp "$src" "$dst"
	fi
	# Skip anything that is not actually a PDF (a few .pdf.gz are database dumps).
	head -c 5 "$dst" | grep -q '%PDF-' || rm -f "$dst"
done

# Two packages sometimes ship the same manual; keep one copy of each content.
find "$dir" -maxdepth 1 -name '*.pdf' -print0 | xargs -0 sha256sum | sort |
	awk 'seen[$1]++ { print $2 }' | xargs -r rm -f

n=$(find "$dir" -maxdepth 1 -name '*.pdf' | wc -l)
echo "corpus: $n PDFs in $dir"
if ((n < 20)); then
	echo "corpus: fewer than 20 PDFs; the benchmark is less representative" >&2
fi
