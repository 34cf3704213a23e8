//! Where in a JSON document a byte offset falls, as a path (`rules[2].match.names[0]`).
//!
//! serde reports a deserialisation error with a line and column but no path; the operator needs
//! the path. This scanner walks the raw text up to the error position and keeps the container
//! stack, so `deny_unknown_fields` errors name the exact field without a second schema.

/// One level of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Renders segments as `a.b[3].c`.
pub fn render(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

#[derive(Debug)]
enum Frame {
    Object { key: Option<String>, want_key: bool },
    Array { index: usize },
}

/// Byte offset of a serde_json (line, column) position; both 1-based, column counted in bytes.
pub fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut cur_line = 1usize;
    let mut line_start = 0usize;
    for (i, b) in text.iter().enumerate() {
        if cur_line == line {
            break;
        }
        if *b == b'\n' {
            cur_line += 1;
            line_start = i + 1;
        }
    }
    (line_start + column).min(text.len())
}

/// The path of the innermost value being read when the scanner reaches `offset`.
pub fn path_at(text: &[u8], offset: usize) -> Vec<Seg> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0usize;
    let end = offset.min(text.len());
    while i < end {
        let Some(&b) = text.get(i) else { break };
        match b {
            b'{' => stack.push(Frame::Object { key: None, want_key: true }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = false;
                }
            }
            b'"' => {
                let (s, next) = read_string(text, i + 1);
                if let Some(Frame::Object { key, want_key: true }) = stack.last_mut() {
                    *key = Some(s);
                }
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    stack
        .into_iter()
        .filter_map(|f| match f {
            Frame::Object { key, .. } => key.map(Seg::Key),
            Frame::Array { index } => Some(Seg::Index(index)),
        })
        .collect()
}

/// Reads a JSON string body starting after the opening quote; returns it and the index after
/// the closing quote. Escapes other than `\"` and `\\` are kept verbatim (paths only need keys).
fn read_string(text: &[u8], mut i: usize) -> (String, usize) {
    let mut out = Vec::new();
    while let Some(&b) = text.get(i) {
        match b {
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1),
            b'\\' => {
                if let Some(&n) = text.get(i + 1) {
                    if n != b'"' && n != b'\\' {
                        out.push(b'\\');
                    }
                    out.push(n);
                }
                i += 2;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_paths() {
        let doc = br#"{"rules": [{"id": "a"}, {"id": "b", "match": {"names": ["x", "y["]}}]}"#;
        let pos = doc.windows(4).position(|w| w == b"\"y[\"").unwrap() + 4;
        assert_eq!(render(&path_at(doc, pos)), "rules[1].match.names[1]");
        assert_eq!(render(&path_at(doc, 1)), "");
    }

    #[test]
    fn line_and_column() {
        let doc = b"{\n  \"a\": 1,\n  \"b\": 2\n}";
        let off = offset_of(doc, 3, 6);
        assert_eq!(render(&path_at(doc, off)), "b");
    }
}
