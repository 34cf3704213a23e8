//! Chunk-safe `text/event-stream` decoder (WHATWG HTML §9.2.6), fed as bytes arrive.
//!
//! The decoder never holds more than one incomplete line plus the current event's data, and both
//! are capped, so a hostile stream cannot grow memory without bound. Events are handed out as they
//! complete; nothing waits for the end of the stream.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// Why the stream could not be decoded further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// A line or an event's data exceeded the configured cap.
    TooLarge,
}

#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended in CR: a following LF belongs to the same line break.
    pending_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    max_event_bytes: usize,
    first_line: bool,
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            pending_cr: false,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            max_event_bytes,
            first_line: true,
        }
    }

    /// Bytes of an event not yet completed by its blank line are held.
    pub fn holds_event(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    /// Feeds one chunk; completed events are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut rest = chunk;
        if self.pending_cr {
            self.pending_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            self.push_line_bytes(head)?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
            let is_cr = tail.first() == Some(&b'\r');
            rest = tail.get(1..).unwrap_or_default();
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = rest.get(1..).unwrap_or_default(),
                    None => self.pending_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.push_line_bytes(rest)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.max_event_bytes {
            return Err(SseError::TooLarge);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut line = String::from_utf8_lossy(raw);
        if self.first_line {
            self.first_line = false;
            if let Some(stripped) = line.strip_prefix('\u{feff}') {
                line = std::borrow::Cow::Owned(stripped.to_owned());
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment / keep-alive
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let (f, v) = line.split_at(i);
                let v = v.get(1..).unwrap_or_default();
                (f, v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(SseError::TooLarge);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields do not concern a gateway
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if !self.has_data {
            self.event = None;
            return;
        }
        out.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data), id: self.id.clone() });
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"event: message\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\nid: 7\ndata: x\ndata: y\n\n";

    fn decode_in_chunks(size: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::new(1 << 16);
        let mut out = Vec::new();
        for chunk in STREAM.chunks(size) {
            d.feed(chunk, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn same_events_whatever_the_chunking() {
        let whole = decode_in_chunks(STREAM.len());
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].event.as_deref(), Some("message"));
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert_eq!(whole[1].data, "x\ny");
        assert_eq!(whole[1].id.as_deref(), Some("7"));
        for size in 1..STREAM.len() {
            assert_eq!(decode_in_chunks(size), whole, "chunk size {size}");
        }
    }

    #[test]
    fn caps_memory() {
        let mut d = SseDecoder::new(8);
        let mut out = Vec::new();
        assert_eq!(d.feed(b"data: 0123456789", &mut out), Err(SseError::TooLarge));
    }
}
