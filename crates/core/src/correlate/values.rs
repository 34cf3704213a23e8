//! The values a message sends out, read off the content scanner's view (escapes decoded, every
//! duplicate key kept: what any parser could hand the tool is in it): what the model chooses
//! and the server receives, i.e. everything under `params.arguments` (tool and prompt arguments),
//! `params.inputResponses` (task inputs, MRTR retries), `params.argument` / `params.context`
//! (completions), `params.uri` (a resource read is a URL the model picked) and a client's
//! `result` (answers to a server's elicitation or sampling request), in the order they appear.
//! Inside those, keys are sent too, and so are numbers, booleans and nulls (`[65, 75, 73, 65]`
//! carries as much as a string): their text is gathered apart. A legacy batch is read element
//! by element. The envelope (`jsonrpc`, `id`, `method`, the tool's name, `_meta`, which the SDK
//! writes, not the model) is not counted.
//!
//! No JSON structure beyond brackets, colons and commas is needed: a string followed by `:` is a
//! key, any other string is a value, and brackets say how deep it sits.

use crate::scan::view::View;

/// The `params` members whose whole content is sent out.
const SENT: &[&[u8]] = &[b"arguments", b"inputResponses", b"argument", b"context", b"uri"];

/// Deepest nesting tracked; deeper values still count (they inherit their ancestor's reading).
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy)]
struct Frame {
    /// This container is under a counted key: every string in it is sent out.
    counted: bool,
    /// This object is a message's `params`.
    params: bool,
    /// This object is a message (top level, or an element of a top-level batch).
    message: bool,
    is_object: bool,
}

/// What the key just read makes of the value after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    None,
    Params,
    Counted,
    Other,
}

/// What a message sends out.
#[derive(Debug, Default)]
pub struct Outbound {
    /// The strings (values, and keys inside what is sent), as ranges of `view.text`, each with
    /// whether it is a key.
    pub strings: Vec<((usize, usize), bool)>,
    /// The text of the other scalars sent (numbers, booleans, nulls), comma-separated.
    pub scalars: Vec<u8>,
}

/// What `message` sends out (see the module doc).
pub fn outbound(message: &[u8], view: &View<'_>) -> Outbound {
    let mut out = Outbound { strings: Vec::with_capacity(view.strings.len()), scalars: Vec::new() };
    // Inside a scalar's text (a number, `true`, …): its next byte continues it.
    let mut in_scalar = false;
    let mut stack: Vec<Frame> = Vec::with_capacity(8);
    let mut key = Key::None;
    let mut from = 0usize;
    let mut overflow = 0usize;
    let ends = view.strings.iter().map(|t| t.raw.0).chain([message.len()]);
    for (i, start) in ends.enumerate() {
        // Structure (and the scalars) between the previous string and this one.
        for b in message.get(from..start).unwrap_or_default() {
            match b {
                b'{' | b'[' => {
                    let parent = stack.last().copied();
                    let frame = match parent {
                        None => Frame { counted: false, params: false, message: *b == b'{', is_object: *b == b'{' },
                        Some(p) => Frame {
                            counted: p.counted || key == Key::Counted,
                            params: p.message && key == Key::Params && *b == b'{',
                            // An element of a top-level array (a batch) is a message.
                            message: stack.len() == 1 && !p.is_object && *b == b'{',
                            is_object: *b == b'{',
                        },
                    };
                    if stack.len() < MAX_DEPTH {
                        stack.push(frame);
                    } else {
                        overflow += 1;
                    }
                    key = Key::None;
                }
                b'}' | b']' => {
                    if overflow > 0 {
                        overflow -= 1;
                    } else {
                        stack.pop();
                    }
                    key = Key::None;
                }
                b',' => key = Key::None,
                b if (b.is_ascii_alphanumeric() || b"+-.".contains(b))
                    && (key == Key::Counted || stack.last().is_some_and(|t| t.counted)) =>
                {
                    if !in_scalar && !out.scalars.is_empty() {
                        out.scalars.push(b',');
                    }
                    out.scalars.push(*b);
                    in_scalar = true;
                    continue;
                }
                _ => {}
            }
            in_scalar = false;
        }
        in_scalar = false;
        let Some(tok) = view.strings.get(i) else { break };
        from = tok.raw.1;
        let top = stack.last().copied();
        let is_key = top.is_some_and(|t| t.is_object) && next_is_colon(message, tok.raw.1);
        let text = view.text.get(tok.view.0..tok.view.1).unwrap_or_default();
        if is_key {
            if top.is_some_and(|t| t.counted) {
                out.strings.push((tok.view, true));
            }
            key = match top {
                Some(t) if t.counted => Key::Counted,
                Some(t) if t.message && text == b"params" => Key::Params,
                Some(t) if t.message && text == b"result" => Key::Counted,
                Some(t) if t.params && SENT.contains(&text) => Key::Counted,
                _ => Key::Other,
            };
            continue;
        }
        if top.is_some_and(|t| t.counted) || key == Key::Counted {
            out.strings.push((tok.view, false));
        }
        key = Key::None;
    }
    out
}

fn next_is_colon(message: &[u8], at: usize) -> bool {
    message.get(at..).unwrap_or_default().iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::view::view;

    fn values(msg: &str) -> Vec<String> {
        let v = view(msg.as_bytes()).unwrap();
        outbound(msg.as_bytes(), &v)
            .strings
            .into_iter()
            .map(|((a, b), _)| String::from_utf8_lossy(v.text.get(a..b).unwrap()).into_owned())
            .collect()
    }

    #[test]
    fn arguments_inputs_and_client_results_are_sent_the_envelope_is_not() {
        let call = r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"send","arguments":{"to":"x@y.z","body":["p1",{"deep":"p2"}],"n":3},"_meta":{"k":"meta"}}}"#;
        assert_eq!(values(call), ["to", "x@y.z", "body", "p1", "deep", "p2", "n"]);
        let update = r#"{"id":1,"method":"tasks/update","params":{"taskId":"t1","inputResponses":{"q":{"action":"accept","content":{"a":"v"}}}}}"#;
        assert_eq!(values(update), ["q", "action", "accept", "content", "a", "v"]);
        let answer = r#"{"jsonrpc":"2.0","id":5,"result":{"action":"accept","content":{"name":"octo"}}}"#;
        assert_eq!(values(answer), ["action", "accept", "content", "name", "octo"]);
        let batch = r#"[{"id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":"one"}}},{"id":2,"method":"tools/call","params":{"name":"b","arguments":{"x":"two"}}}]"#;
        assert_eq!(values(batch), ["x", "one", "x", "two"]);
        let read = r#"{"id":1,"method":"resources/read","params":{"uri":"https://evil.example/?q=abc"}}"#;
        assert_eq!(values(read), ["https://evil.example/?q=abc"]);
    }

    #[test]
    fn numbers_booleans_and_nulls_sent_are_gathered_apart() {
        let msg =
            r#"{"id":12345,"method":"tools/call","params":{"name":"a","arguments":{"b":[65, 75,-7.5e3],"t":true,"n":null}}}"#;
        let v = view(msg.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(outbound(msg.as_bytes(), &v).scalars).unwrap(), "65,75,-7.5e3,true,null");
    }

    #[test]
    fn escapes_and_duplicate_keys_are_read_as_any_parser_could() {
        let call =
            r#"{"id":1,"method":"tools/call","params":{"name":"a","\u0061rguments":{"x":"hid"},"arguments":{"x":"\u0041B"}}}"#;
        assert_eq!(values(call), ["x", "hid", "x", "AB"]);
        // A key whose value is not a container: the string is still sent.
        assert_eq!(values(r#"{"id":1,"method":"m","params":{"arguments":"flat"}}"#), ["flat"]);
    }
}
