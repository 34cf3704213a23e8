#!/usr/bin/env python3
"""The differential harness's inputs: raw HTTP requests, one JSON line each
(`{"id", "http_method", "headers": [[name, value]], "body_b64"}`).

    python cases.py OUT.jsonl [--seed N] [--mutations N]

Three sources, all deterministic for a seed:
- every request of the fixture corpus (`fixtures/corpus/*.json`);
- every base message (both eras: calls, prompts, resources, completions, subscriptions, lists)
  with every single mutation below;
- `--mutations` random stacks of two to four mutations on random bases.

A mutation changes how a message is written, not what a naive reader would say it means: key
order, whitespace (JSON's own and not), escapes in keys and values, duplicate keys at every depth,
number spellings, byte encodings (BOM, UTF-16/32, invalid and overlong UTF-8), charsets, arrays
(batches, nesting), type confusions (`method` with `result`, ids, `jsonrpc`), prototype keys, deep
nesting, trailing bytes. Whatever an SDK executes after that, the filter must either have read the
same or have refused the message (`compare.py`).
"""
from __future__ import annotations

import argparse
import base64
import json
import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
ACCEPT = "application/json, text/event-stream"


class Raw:
    """A token written verbatim (number spellings JSON parsers disagree on, NaN, ...)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Obj:
    """A JSON object as ordered (key, value) pairs, so duplicates and order can be written."""

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        self.pairs = pairs

    @staticmethod
    def of(value: object) -> object:
        if isinstance(value, dict):
            return Obj([(k, Obj.of(v)) for k, v in value.items()])
        if isinstance(value, list):
            return [Obj.of(v) for v in value]
        return value

    def get(self, key: str) -> object:
        for k, v in self.pairs:
            if k == key:
                return v
        return None

    def set(self, key: str, value: object) -> None:
        for i, (k, _) in enumerate(self.pairs):
            if k == key:
                self.pairs[i] = (k, value)
                return
        self.pairs.append((key, value))

    def drop(self, key: str) -> None:
        self.pairs = [(k, v) for k, v in self.pairs if k != key]


class Writer:
    """Writes an Obj tree with the style knobs mutations turn."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.whitespace: list[str] = []  # pieces inserted between tokens
        self.escape_rate = 0.0  # share of string characters written as \\u escapes
        self.upper_hex = False
        self.escape_slash = False
        self.shuffle = False

    def ws(self) -> str:
        if not self.whitespace or self.rng.random() < 0.5:
            return ""
        return self.rng.choice(self.whitespace)

    def string(self, s: str) -> str:
        out = ['"']
        for ch in s:
            cp = ord(ch)
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "/" and self.escape_slash:
                out.append("\\/")
            elif cp < 0x20 or 0xD800 <= cp <= 0xDFFF or (self.escape_rate and self.rng.random() < self.escape_rate):
                units = [cp] if cp < 0x10000 else [0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)]
                for u in units:
                    out.append(("\\u%04X" if self.upper_hex else "\\u%04x") % u)
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    def value(self, v: object) -> str:
        if isinstance(v, Raw):
            return v.text
        if isinstance(v, Obj):
            pairs = list(v.pairs)
            if self.shuffle:
                self.rng.shuffle(pairs)
            inner = ",".join(f"{self.ws()}{self.string(k)}{self.ws()}:{self.ws()}{self.value(x)}{self.ws()}" for k, x in pairs)
            return "{" + inner + "}"
        if isinstance(v, list):
            return "[" + ",".join(f"{self.ws()}{self.value(x)}{self.ws()}" for x in v) + "]"
        if isinstance(v, str):
            return self.string(v)
        return json.dumps(v)


def meta() -> dict:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "diff", "version": "1.0"},
    }


ARGS = {"text": "hi /é😀", "n": 3, "nested": {"k": [1, 2.5, {"z": True, "path": "/etc/passwd"}]}}
BASES: list[tuple[str, str, dict, str | None]] = [
    # (label, method, params, Mcp-Name)
    ("call", "tools/call", {"name": "echo", "arguments": ARGS}, "echo"),
    ("call-denied", "tools/call", {"name": "delete_all", "arguments": {"all": True}}, "delete_all"),
    ("call-noargs", "tools/call", {"name": "echo"}, "echo"),
    ("prompt", "prompts/get", {"name": "greet", "arguments": {"who": "world"}}, "greet"),
    ("read", "resources/read", {"uri": "file:///srv/public/a.txt"}, "file:///srv/public/a.txt"),
    ("read-http", "resources/read", {"uri": "https://Example.COM/a/../b?q=1"}, "https://Example.COM/a/../b?q=1"),
    ("subscribe", "resources/subscribe", {"uri": "file:///srv/public/a.txt"}, None),
    ("complete-prompt", "completion/complete", {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "who", "value": "w"}}, None),
    ("complete-resource", "completion/complete", {"ref": {"type": "ref/resource", "uri": "file:///srv/{x}"}, "argument": {"name": "x", "value": "a"}}, None),
    ("tools-list", "tools/list", {}, None),
    ("prompts-list", "prompts/list", {}, None),
    ("resources-list", "resources/list", {}, None),
    ("templates-list", "resources/templates/list", {}, None),
    ("ping", "ping", {}, None),
]


class Case:
    def __init__(self, label: str, era: str, method: str, params: dict, name: str | None) -> None:
        self.label = label
        self.era = era
        p = dict(params)
        if era == "modern":
            p["_meta"] = meta()
        self.msg = Obj.of({"jsonrpc": "2.0", "id": 7, "method": method, "params": p})
        self.headers: list[list[str]] = [["content-type", "application/json"], ["accept", ACCEPT]]
        self.headers.append(["mcp-protocol-version", MODERN if era == "modern" else LEGACY])
        if era == "modern":
            self.headers.append(["mcp-method", method])
            if name is not None:
                self.headers.append(["mcp-name", name])
        self.wrap = None  # a function of the written text (batches)
        self.encode = lambda text: text.encode("utf-8", "surrogatepass")
        self.tweak_bytes = None  # a function of the encoded bytes

    def params(self) -> Obj:
        p = self.msg.get("params")
        return p if isinstance(p, Obj) else Obj([])

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [h for h in self.headers if h[0] != name]
        if value is not None:
            self.headers.append([name, value])

    def body(self, w: Writer) -> bytes:
        text = w.value(self.msg)
        if self.wrap:
            text = self.wrap(text, w)
        data = self.encode(text)
        return self.tweak_bytes(data) if self.tweak_bytes else data


def every_object(o: object, path: str = "") -> list[tuple[str, Obj]]:
    out: list[tuple[str, Obj]] = []
    if isinstance(o, Obj):
        out.append((path, o))
        for k, v in o.pairs:
            out.extend(every_object(v, f"{path}.{k}"))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            out.extend(every_object(v, f"{path}[{i}]"))
    return out


OTHER = {"method": "tools/list", "name": "delete_all", "uri": "file:///etc/shadow", "id": 8, "jsonrpc": "1.0", "arguments": Obj([("all", True)])}

# --- mutations: each takes (case, writer, rng) ---------------------------------------------------


def m_shuffle(c, w, r):
    w.shuffle = True


def m_json_ws(c, w, r):
    w.whitespace = [" ", "\t", "\n", "\r\n", "  \t "]


def m_foreign_ws(c, w, r):
    w.whitespace = [r.choice(["\u00a0", "\x0c", "\x0b", "\u2028", "\ufeff", "\x00"])]


def m_escapes(c, w, r):
    w.escape_rate = r.choice([0.3, 1.0])
    w.upper_hex = r.random() < 0.5
    w.escape_slash = r.random() < 0.5


def m_duplicate(c, w, r):
    path, o = r.choice(every_object(c.msg))
    if not o.pairs:
        o.pairs.append(("x", 1))
    k, v = r.choice(o.pairs)
    other = OTHER.get(k, "dup-" + k if isinstance(v, str) else Raw("1"))
    i = o.pairs.index((k, v))
    o.pairs.insert(i + (1 if r.random() < 0.5 else 0), (k, other))


def m_id(c, w, r):
    c.msg.set("id", Raw(r.choice(["1.0", "1e0", "-0", "01", "1E400", "9223372036854775808", "123456789012345678901234567890", '"7"', "true", "null", "[7]", "{}", "0x7", "+7"])))


def m_number(c, w, r):
    args = c.params().get("arguments")
    if not isinstance(args, Obj):
        args = Obj([])
        c.params().set("arguments", args)
    args.set("num", Raw(r.choice(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1.0", "123456789012345678901234567890", "0.1e1", "-0.0", "1E+2", ".5", "5.", "00", "-"])))


def m_bom(c, w, r):
    c.tweak_bytes = lambda b: b"\xef\xbb\xbf" + b


def m_utf16(c, w, r):
    enc = r.choice(["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32"])
    c.encode = lambda text: text.encode(enc, "surrogatepass")
    if r.random() < 0.5:
        c.set_header("content-type", f"application/json; charset={enc.replace('-le', 'le').replace('-be', 'be')}")


def m_bad_utf8(c, w, r):
    name = c.params().get("name") or c.params().get("uri")
    marker = r.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xe2\x82"])
    if isinstance(name, str):
        c.params().set("name" if c.params().get("name") else "uri", name + "\u0001MARK")
        c.tweak_bytes = lambda b: b.replace(b"\\u0001MARK", marker)
    else:
        c.tweak_bytes = lambda b: b[:-1] + marker + b[-1:]


def m_latin1(c, w, r):
    c.params().set("name", "ech\u00f6") if c.params().get("name") else None
    c.encode = lambda text: text.encode("latin-1", "replace")
    c.set_header("content-type", r.choice(["application/json; charset=latin1", "application/json; charset=iso-8859-1", "application/json"]))


def m_content_type(c, w, r):
    c.set_header("content-type", r.choice([
        "application/json;charset=UTF-8", 'application/json; charset="utf-8"', "APPLICATION/JSON",
        "application/json; charset=utf-8; charset=utf-16le", "application/json-rpc", "text/json",
        "application/json, text/plain", "application/jsonx", " application/json ", "application/json;",
        "application/json; charset=utf8", "text/plain", None,
    ]))


def m_content_encoding(c, w, r):
    import gzip
    import zlib
    enc = r.choice(["gzip", "deflate", "identity", "br", "GZIP"])
    c.headers.append(["content-encoding", enc])
    if enc.lower() == "gzip":
        c.tweak_bytes = gzip.compress
    elif enc == "deflate":
        c.tweak_bytes = zlib.compress


def m_batch(c, w, r):
    second = Obj.of({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "delete_all", "arguments": {}}})
    if c.era == "modern":
        second.get("params").set("_meta", Obj.of(meta()))
    shape = r.choice(["one", "two", "nested"])
    c.wrap = lambda text, w: {"one": f"[{text}]", "two": f"[{text},{w.value(second)}]", "nested": f"[[{text}]]"}[shape]


def m_params_array(c, w, r):
    c.msg.set("params", [c.params()])


def m_type_confusion(c, w, r):
    choice = r.choice(["result", "error", "no-id", "id-null", "jsonrpc-num", "jsonrpc-space", "method-case", "method-space", "method-nul", "name-num", "name-list", "name-null", "no-jsonrpc", "no-params"])
    p = c.params()
    if choice == "result":
        c.msg.pairs.append(("result", Obj([])))
    elif choice == "error":
        c.msg.pairs.append(("error", Obj.of({"code": -1, "message": "x"})))
    elif choice == "no-id":
        c.msg.drop("id")
    elif choice == "id-null":
        c.msg.set("id", None)
    elif choice == "jsonrpc-num":
        c.msg.set("jsonrpc", Raw("2.0"))
    elif choice == "jsonrpc-space":
        c.msg.set("jsonrpc", "2.0 ")
    elif choice == "method-case":
        c.msg.set("method", str(c.msg.get("method")).title())
    elif choice == "method-space":
        c.msg.set("method", str(c.msg.get("method")) + " ")
    elif choice == "method-nul":
        c.msg.set("method", str(c.msg.get("method")) + "\u0000")
    elif choice in ("name-num", "name-list", "name-null"):
        key = "uri" if p.get("uri") is not None else "name"
        p.set(key, {"name-num": Raw("5"), "name-list": ["echo"], "name-null": None}[choice])
    elif choice == "no-jsonrpc":
        c.msg.drop("jsonrpc")
    elif choice == "no-params":
        c.msg.drop("params")


def m_proto(c, w, r):
    p = c.params()
    where = r.choice(["params", "arguments", "top"])
    evil = Obj.of({"name": "delete_all", "uri": "file:///etc/shadow", "method": "tools/call"})
    if where == "params":
        p.pairs.insert(0, ("__proto__", evil))
        if r.random() < 0.5:
            p.drop("name")
    elif where == "arguments":
        a = p.get("arguments")
        if isinstance(a, Obj):
            a.pairs.append(("__proto__", Obj.of({"admin": True})))
            a.pairs.append(("constructor", Obj.of({"prototype": {"x": 1}})))
    else:
        c.msg.pairs.insert(0, ("__proto__", evil))


def m_key_escape(c, w, r):
    target = r.choice(["method", "params", "name", "uri", "jsonrpc", "id", "_meta", "arguments"])
    for _, o in every_object(c.msg):
        o.pairs = [("\u0001K" + k if k == target else k, v) for k, v in o.pairs]
    esc = "".join("\\u%04x" % ord(ch) if i % 2 == 0 else ch for i, ch in enumerate(target))
    old = c.tweak_bytes
    c.tweak_bytes = lambda b: (old(b) if old else b).replace(('"\\u0001K' + target + '"').encode(), ('"' + esc + '"').encode())


def m_lone_surrogate(c, w, r):
    s = r.choice(["\ud800", "\udfff", "\udbff\u0041", "a\udc00"])
    where = r.choice(["arg", "name", "meta", "unknown"])
    p = c.params()
    if where == "arg":
        a = p.get("arguments")
        if not isinstance(a, Obj):
            a = Obj([])
            p.set("arguments", a)
        a.set("s" + s if r.random() < 0.3 else "s", "v" + s)
    elif where == "name" and isinstance(p.get("name"), str):
        p.set("name", str(p.get("name")) + s)
    elif where == "meta" and isinstance(p.get("_meta"), Obj):
        p.get("_meta").set("x", s)
    else:
        p.set("zzz", s)


def m_unicode_name(c, w, r):
    p = c.params()
    if isinstance(p.get("name"), str):
        p.set("name", r.choice(["ｅｃｈｏ", "e\u0301cho", "echo\u200b", "ECHO", "delete_all\u0000", "delete\u2024all", "echo\ud83d\ude00"]))


def m_deep(c, w, r):
    depth = r.choice([100, 127, 129, 300, 1100])
    c.params().set("arguments", Obj([("deep", Raw("[" * depth + "]" * depth))]))


def m_trailing(c, w, r):
    tail = r.choice(["", " x", "{}", ",", "\x00", "]", "/**/", "\n\n"])
    lead = r.choice(["", "", "\n", "/**/"])
    old = c.wrap
    c.wrap = lambda text, w: lead + (old(text, w) if old else text) + tail


def m_uri(c, w, r):
    p = c.params()
    key = "uri" if p.get("uri") is not None else None
    if key is None:
        ref = p.get("ref")
        if isinstance(ref, Obj) and ref.get("uri") is not None:
            p = ref
            key = "uri"
    if key:
        p.set(key, r.choice(["file:///srv/%70ublic/a.txt", "file:///srv/public/../secret", "FILE:///srv/public/a.txt", "file:///srv/public/a.txt%00", "file:///srv/public/%2e%2e/secret", "file:///srv//public/a.txt", "https://EXAMPLE.com:443/b", "file:///srv/public/a.txt#frag", "file:///srv/public/a%2Ftxt"]))


def m_headers(c, w, r):
    choice = r.choice(["drop-name", "drop-method", "name-b64", "version-legacy", "dup-name", "name-pad"])
    name = next((v for k, v in c.headers if k == "mcp-name"), None)
    if choice == "drop-name":
        c.set_header("mcp-name", None)
    elif choice == "drop-method":
        c.set_header("mcp-method", None)
    elif choice == "name-b64" and name:
        c.set_header("mcp-name", "=?base64?" + base64.b64encode(name.encode()).decode() + "?=")
    elif choice == "version-legacy":
        c.set_header("mcp-protocol-version", LEGACY)
    elif choice == "dup-name" and name:
        c.headers.append(["mcp-name", "delete_all"])
    elif choice == "name-pad" and name:
        c.set_header("mcp-name", f"  {name}\t")


MUTATIONS = [m_shuffle, m_json_ws, m_foreign_ws, m_escapes, m_duplicate, m_id, m_number, m_bom, m_utf16, m_bad_utf8, m_latin1,
             m_content_type, m_content_encoding, m_batch, m_params_array, m_type_confusion, m_proto, m_key_escape, m_lone_surrogate, m_unicode_name,
             m_deep, m_trailing, m_uri, m_headers]


def corpus_cases() -> list[dict]:
    out = []
    for f in sorted((ROOT / "fixtures" / "corpus").glob("*.json")):
        for case in json.loads(f.read_text()).get("cases", []):
            req = case.get("request")
            if not req or req.get("method", "POST") != "POST":
                continue
            body = base64.b64decode(req["body_b64"]) if "body_b64" in req else req.get("body", "").encode("utf-8", "surrogatepass")
            out.append({"id": f"corpus:{case['name']}", "http_method": "POST", "headers": req.get("headers", []), "body_b64": base64.b64encode(body).decode()})
    return out


def render(case_id: str, c: Case, w: Writer) -> dict:
    return {"id": case_id, "http_method": "POST", "headers": c.headers, "body_b64": base64.b64encode(c.body(w)).decode()}


def generate(seed: int, mutations: int) -> list[dict]:
    out = corpus_cases()
    r = random.Random(seed)
    eras = ["modern", "legacy"]
    for era in eras:
        for label, method, params, name in BASES:
            out.append(render(f"base:{era}:{label}", Case(label, era, method, params, name), Writer(r)))
            for m in MUTATIONS:
                for k in range(3):
                    c, w = Case(label, era, method, params, name), Writer(r)
                    m(c, w, r)
                    out.append(render(f"one:{era}:{label}:{m.__name__[2:]}:{k}", c, w))
    for n in range(mutations):
        era = r.choice(eras)
        label, method, params, name = r.choice(BASES)
        c, w = Case(label, era, method, params, name), Writer(r)
        stack = r.sample(MUTATIONS, r.randint(2, 4))
        for m in stack:
            m(c, w, r)
        out.append(render(f"mix:{n}:{era}:{label}:" + "+".join(m.__name__[2:] for m in stack), c, w))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--mutations", type=int, default=1500)
    a = ap.parse_args()
    cases = generate(a.seed, a.mutations)
    with open(a.out, "w") as f:
        for c in cases:
            f.write(json.dumps(c) + "\n")
    print(f"cases.py: {len(cases)} cases (seed {a.seed}) -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
