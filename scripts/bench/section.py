"""Rewrites one generated section of BENCHMARKS.md: the text between
`<!-- NAME:begin -->` and `<!-- NAME:end -->`, or a new section with HEADING at the end."""


def replace_section(path, name, heading, lines):
    """Puts LINES (a list of strings) between NAME's markers in the file at PATH."""
    text = open(path).read()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = begin + "\n\n" + "\n".join(lines) + "\n\n" + end
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n" + block + "\n"
    open(path, "w").write(text)
