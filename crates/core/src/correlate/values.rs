//! The values a message sends out, read off the content scanner's view (escapes decoded, every
//! duplicate key kept: what any parser could hand the tool is in it): the string values under
//! `params.arguments` (tool and prompt arguments), `params.inputResponses` (task inputs, MRTR
//! retries) and a client's `result` (answers to a server's elicitation or sampling request), in
//! the order they appear. A legacy batch is read element by element.
//!
//! No JSON structure beyond brackets, colons and commas is needed: a string followed by `:` is a
//! key, any other string is a value, and brackets say how deep it sits.

use crate::scan::view::View;

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

/// The ranges (in `view.text`) of the string values `message` sends out.
pub fn outbound(message: &[u8], view: &View<'_>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::with_capacity(8);
    let mut key = Key::None;
    let mut from = 0usize;
    let mut overflow = 0usize;
    for (i, tok) in view.strings.iter().enumerate() {
        // Structure between the previous string and this one.
        for b in message.get(from..tok.raw.0).unwrap_or_default() {
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
                _ => {}
            }
        }
        from = tok.raw.1;
        let top = stack.last().copied();
        let is_key = top.is_some_and(|t| t.is_object) && next_is_colon(message, tok.raw.1);
        let text = view.text.get(tok.view.0..tok.view.1).unwrap_or_default();
        if is_key {
            key = match top {
                Some(t) if t.counted => Key::Counted,
                Some(t) if t.message && text == b"params" => Key::Params,
                Some(t) if t.message && text == b"result" => Key::Counted,
                Some(t) if t.params && (text == b"arguments" || text == b"inputResponses") => Key::Counted,
                _ => Key::Other,
            };
            continue;
        }
        if top.is_some_and(|t| t.counted) || key == Key::Counted {
            out.push(tok.view);
        }
        let _ = i;
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
            .into_iter()
            .map(|(a, b)| String::from_utf8_lossy(v.text.get(a..b).unwrap()).into_owned())
            .collect()
    }

    #[test]
    fn arguments_inputs_and_client_results_are_sent_the_envelope_is_not() {
        let call = r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"send","arguments":{"to":"x@y.z","body":["p1",{"deep":"p2"}],"n":3},"_meta":{"k":"meta"}}}"#;
        assert_eq!(values(call), ["x@y.z", "p1", "p2"]);
        let update = r#"{"id":1,"method":"tasks/update","params":{"taskId":"t1","inputResponses":{"q":{"action":"accept","content":{"a":"v"}}}}}"#;
        assert_eq!(values(update), ["accept", "v"]);
        let answer = r#"{"jsonrpc":"2.0","id":5,"result":{"action":"accept","content":{"name":"octo"}}}"#;
        assert_eq!(values(answer), ["accept", "octo"]);
        let batch = r#"[{"id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":"one"}}},{"id":2,"method":"tools/call","params":{"name":"b","arguments":{"x":"two"}}}]"#;
        assert_eq!(values(batch), ["one", "two"]);
    }

    #[test]
    fn escapes_and_duplicate_keys_are_read_as_any_parser_could() {
        let call =
            r#"{"id":1,"method":"tools/call","params":{"name":"a","\u0061rguments":{"x":"hid"},"arguments":{"x":"\u0041B"}}}"#;
        assert_eq!(values(call), ["hid", "AB"]);
        // A key whose value is not a container: the string is still sent.
        assert_eq!(values(r#"{"id":1,"method":"m","params":{"arguments":"flat"}}"#), ["flat"]);
    }
}
