"""Canonical text of a decoded JSON value, for the differential harness (Python side).

`canonical(value) -> str` must be byte-identical to the JS and Rust implementations, so the
values an SDK handler received can be compared with what the filter classified:

- None -> `null`; True/False -> `true`/`false` (bool is checked before int);
- numbers: integral and |x| < 2**53 -> decimal integer (`-0.0` -> `0`); anything else ->
  `n:` + 16 lowercase hex digits of the IEEE-754 float64 big-endian bits (an int too large
  for a float -> `n:7ff0000000000000` / `n:fff0000000000000`; NaN -> Python's NaN bits);
- strings: `"` + per UTF-16 code unit (lone surrogates kept) the printable ASCII character
  (0x20..0x7e except `"` and `\\`) or `\\u` + 4 lowercase hex digits + `"`;
- list/tuple -> `[a,b]`; dict -> `{k:v,...}` with keys sorted by UTF-16 code units;
- pydantic models are dumped (`model_dump(by_alias=True, exclude_none=False)`) first.
"""
from __future__ import annotations

import math
import struct
from typing import Any

_SAFE = 2**53


def _units(s: str) -> bytes:
    return s.encode("utf-16-be", "surrogatepass")


def _number(x: int | float) -> str:
    if isinstance(x, int):
        if abs(x) < _SAFE:
            return str(x)
        try:
            x = float(x)
        except OverflowError:
            return "n:7ff0000000000000" if x > 0 else "n:fff0000000000000"
    elif math.isfinite(x) and x.is_integer() and abs(x) < _SAFE:
        return str(int(x))  # int(-0.0) == 0
    return "n:" + struct.pack(">d", x).hex()


def _string(s: str) -> str:
    b = _units(s)
    out = ['"']
    for i in range(0, len(b), 2):
        u = (b[i] << 8) | b[i + 1]
        out.append(chr(u) if 0x20 <= u <= 0x7E and u not in (0x22, 0x5C) else f"\\u{u:04x}")
    out.append('"')
    return "".join(out)


def canonical(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(by_alias=True, exclude_none=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=_units)
        return "{" + ",".join(_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise TypeError(f"canonical: unsupported type {type(value).__name__}")


if __name__ == "__main__":
    assert canonical({"b": [1, 2.5, "é\ud800"], "a": None}) == '{"a":null,"b":[1,n:4004000000000000,"\\u00e9\\ud800"]}'
    assert canonical([True, False, 0, -0.0, 3.0, -7]) == "[true,false,0,0,3,-7]"
    assert canonical(2**53) == "n:4340000000000000" and canonical(2**53 - 1) == "9007199254740991"
    assert canonical(float(2**53)) == "n:4340000000000000"
    assert canonical(10**400) == "n:7ff0000000000000" and canonical(-(10**400)) == "n:fff0000000000000"
    assert canonical(float("nan")) == "n:7ff8000000000000"
    assert canonical(float("inf")) == "n:7ff0000000000000" and canonical(float("-inf")) == "n:fff0000000000000"
    assert canonical('a"b\\c\n\x7f~ ') == '"a\\u0022b\\u005cc\\u000a\\u007f~ "'
    assert canonical("\U0001f600") == '"\\ud83d\\ude00"'
    # UTF-16 order: U+FF61 (one unit 0xff61) sorts after U+1F600 (units 0xd83d 0xde00); code points would not.
    assert canonical({"\uff61": 1, "\U0001f600": 2, "B": 3, "a": 4}) == '{"B":3,"a":4,"\\ud83d\\ude00":2,"\\uff61":1}'
    assert canonical({}) == "{}" and canonical([]) == "[]" and canonical("") == '""'
    print("canonical: ok")
