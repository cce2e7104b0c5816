// Package extract turns an uploaded document into plain text: PDF (text
// layer), DOCX, plain text and Markdown, and HTML. Every parser treats its
// input as hostile: it is bounded in size, time and decompression ratio, and
// reports malformed, encrypted or truncated input as an error, never a panic.
package extract
