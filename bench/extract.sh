#!/usr/bin/env bash
# extract.sh measures PDF extraction against poppler's pdftotext on a corpus
# of real PDFs: word recall per file and overall, and the ratio of our time
# to pdftotext's, both tools run alternately on the same files.
#
# usage: bench/extract.sh [CORPUS]   (default /tmp/tether-pdf-corpus)
# The corpus is gathered by bench/corpus.sh if the directory has no PDFs.
# Extra flags for the Go program go in EXTRACTBENCH_FLAGS (e.g. "-runs 1").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-/tmp/tether-pdf-corpus}

if ! compgen -G "$corpus/*.pdf" >/dev/null; then
	"$root/bench/corpus.sh" "$corpus"
fi
command -v pdftotext >/dev/null || {
	echo "extract.sh: pdftotext missing (apt-get install poppler-utils)" >&2
	exit 1
}

bin=$(mktemp -d)/extractbench
trap 'rm -rf "$(dirname "$bin")"' EXIT
(cd "$root" && go build -o "$bin" ./bench/extractbench)
# shellcheck disable=SC2086 # flags are meant to split
"$bin" ${EXTRACTBENCH_FLAGS:-} "$corpus"
