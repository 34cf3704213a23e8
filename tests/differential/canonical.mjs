// Canonical JSON text for the differential harness: what a handler received, in a form that is
// byte-identical across the Node runners (sdk_ts_v1.mjs, sdk_ts_v2.mjs) and the Python / Rust
// implementations. Rules:
//   null/undefined -> null; booleans -> true/false;
//   integral numbers with |x| < 2^53 -> decimal (-0 -> 0), any other number -> "n:" + the 16
//   lowercase hex digits of its IEEE-754 float64 big-endian bits;
//   strings -> "..." with printable ASCII except `"` and `\` kept, every other UTF-16 code unit
//   as \uXXXX (lowercase hex);
//   arrays -> [a,b]; objects -> own enumerable keys (Object.keys, so a JSON.parse-made
//   "__proto__" own key counts) sorted by UTF-16 code units, {"k":v,...}.

const hex4 = (u) => u.toString(16).padStart(4, '0');

export function canonicalString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    out += u >= 0x20 && u <= 0x7e && u !== 0x22 && u !== 0x5c ? s[i] : `\\u${hex4(u)}`;
  }
  return out + '"';
}

function canonicalNumber(x) {
  if (Number.isInteger(x) && Math.abs(x) < 2 ** 53) return Object.is(x, -0) ? '0' : String(x);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x); // big-endian by default
  return `n:${view.getBigUint64(0).toString(16).padStart(16, '0')}`;
}

export function canonical(value) {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'boolean': return value ? 'true' : 'false';
    case 'number': return canonicalNumber(value);
    case 'string': return canonicalString(value);
    case 'bigint': return String(value); // does not occur (JSON.parse never makes one)
    default: break;
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${canonicalString(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return 'null'; // functions/symbols: not JSON values
}
