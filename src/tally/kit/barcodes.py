"""Code 128 barcodes of digit strings (code set C), drawn as SVG. Pure; no I/O."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

# The 107 symbols of Code 128, each as its 11 modules (1: bar, 0: space); the stop has 13.
PATTERNS = (
    "11011001100",
    "11001101100",
    "11001100110",
    "10010011000",
    "10010001100",
    "10001001100",
    "10011001000",
    "10011000100",
    "10001100100",
    "11001001000",
    "11001000100",
    "11000100100",
    "10110011100",
    "10011011100",
    "10011001110",
    "10111001100",
    "10011101100",
    "10011100110",
    "11001110010",
    "11001011100",
    "11001001110",
    "11011100100",
    "11001110100",
    "11101101110",
    "11101001100",
    "11100101100",
    "11100100110",
    "11101100100",
    "11100110100",
    "11100110010",
    "11011011000",
    "11011000110",
    "11000110110",
    "10100011000",
    "10001011000",
    "10001000110",
    "10110001000",
    "10001101000",
    "10001100010",
    "11010001000",
    "11000101000",
    "11000100010",
    "10110111000",
    "10110001110",
    "10001101110",
    "10111011000",
    "10111000110",
    "10001110110",
    "11101110110",
    "11010001110",
    "11000101110",
    "11011101000",
    "11011100010",
    "11011101110",
    "11101011000",
    "11101000110",
    "11100010110",
    "11101101000",
    "11101100010",
    "11100011010",
    "11101111010",
    "11001000010",
    "11110001010",
    "10100110000",
    "10100001100",
    "10010110000",
    "10010000110",
    "10000101100",
    "10000100110",
    "10110010000",
    "10110000100",
    "10011010000",
    "10011000010",
    "10000110100",
    "10000110010",
    "11000010010",
    "11001010000",
    "11110111010",
    "11000010100",
    "10001111010",
    "10100111100",
    "10010111100",
    "10010011110",
    "10111100100",
    "10011110100",
    "10011110010",
    "11110100100",
    "11110010100",
    "11110010010",
    "11011011110",
    "11011110110",
    "11110110110",
    "10101111000",
    "10100011110",
    "10001011110",
    "10111101000",
    "10111100010",
    "11110101000",
    "11110100010",
    "10111011110",
    "10111101110",
    "11101011110",
    "11110101110",
    "11010000100",
    "11010010000",
    "11010011100",
    "1100011101011",
)
START_C = 105
STOP = 106
QUIET_ZONE = 10  # modules of white space either side, as the standard asks


def code128c_symbols(digits: str) -> list[int]:
    """The symbols encoding an even number of digits in code set C: start, one symbol per
    pair of digits, the modulo-103 check symbol, stop."""
    if not digits or len(digits) % 2 or not (digits.isascii() and digits.isdigit()):
        raise ValueError("code set C encodes a non-empty, even number of digits")
    data = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    check = (START_C + sum(position * value for position, value in enumerate(data, 1))) % 103
    return [START_C, *data, check, STOP]


def code128c_modules(digits: str) -> str:
    """The barcode of ``digits`` as modules (``1`` bar, ``0`` space), quiet zones excluded."""
    return "".join(PATTERNS[symbol] for symbol in code128c_symbols(digits))


def code128c_svg(digits: str, *, height: int = 60, label: str = "") -> str:
    """An SVG drawing of the barcode of ``digits``, one unit per module, scaled by its viewer.

    ``label`` becomes the drawing's accessible name.
    """
    modules = code128c_modules(digits)
    width = len(modules) + 2 * QUIET_ZONE
    bars = []
    position = 0
    while position < len(modules):
        if modules[position] == "1":
            run = len(modules[position:]) - len(modules[position:].lstrip("1"))
            bars.append(f"M{position + QUIET_ZONE} 0h{run}v{height}h-{run}z")
            position += run
        else:
            position += 1
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" role="img" aria-label={quoteattr(label)}>'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path d="{"".join(bars)}" fill="#000"/></svg>'
    )
