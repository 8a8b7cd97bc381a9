"""OGS's vocabulary: coordinates, time controls, clocks.  The one place that knows OGS field names
for these (shared by the client adapter and the sandbox)."""

from __future__ import annotations

from bridge.games.gotypes import Move, Point

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def encode_point(move: Move) -> str:
    """``(3, 3)`` -> ``"dd"``; pass -> ``".."`` (x from the left, y from the top)."""
    if move is None:
        return ".."
    x, y = move
    if not (0 <= x < 25 and 0 <= y < 25):
        raise ValueError(f"point {move} cannot be written as an OGS coordinate")
    return _LETTERS[x] + _LETTERS[y]


def decode_point(text: str) -> Move:
    """``"dd"`` -> ``(3, 3)``; ``".."`` or ``""`` -> pass."""
    if text in ("..", ""):
        return None
    if len(text) != 2 or text[0] not in _LETTERS or text[1] not in _LETTERS:
        raise ValueError(f"{text!r} is not an OGS two-letter coordinate")
    return (_LETTERS.index(text[0]), _LETTERS.index(text[1]))


def encode_points(points: list[Point] | tuple[Point, ...] | frozenset[Point]) -> str:
    """Concatenated two-letter coordinates (``"ddpp"``), sorted for a stable wire form."""
    return "".join(encode_point(p) for p in sorted(points))


def decode_points(text: str) -> list[Point]:
    if len(text) % 2:
        raise ValueError(f"{text!r} is not a list of two-letter coordinates")
    out: list[Point] = []
    for i in range(0, len(text), 2):
        p = decode_point(text[i:i + 2])
        if p is not None:
            out.append(p)
    return out


def decode_move_array(move: list[int] | tuple[int, ...]) -> Move:
    """``[x, y, ms]`` from a ``game/ID/move`` event or gamedata ``moves`` -> a move (x = -1 is a pass)."""
    if len(move) < 2:
        raise ValueError(f"{move!r} is not an OGS move array")
    x, y = int(move[0]), int(move[1])
    if x < 0 or y < 0:
        return None
    return (x, y)
