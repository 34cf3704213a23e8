//! Batching by size and age over a bounded buffer. Pure: the caller passes the time (any
//! monotonic nanosecond clock) and sends the batches it gets back.
//!
//! - [`Batcher::push`] appends an entry, or refuses it when the buffer is full (counted in
//!   [`Batcher::dropped`]). Callers that chain receipts should ask [`Batcher::has_room`] *before*
//!   signing, so a refused record never takes a `chain_seq` and the chain stays gap-free.
//! - [`Batcher::poll`] hands out a batch when the buffered bytes reach `max_batch_bytes` or the
//!   oldest entry is `max_age_nanos` old; [`Batcher::flush`] hands out whatever is left.
//! - A batch that failed to send can be put back in front with [`Batcher::requeue`] (order kept).

use std::collections::VecDeque;

use super::LogEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Target request size: a batch closes when adding the next entry would pass it (a single
    /// larger entry still goes out alone).
    pub max_batch_bytes: usize,
    /// A non-empty buffer is sent once its oldest entry is this old.
    pub max_age_nanos: u64,
    /// Bound on buffered bytes (pending + requeued); pushes beyond it are refused.
    pub max_buffer_bytes: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { max_batch_bytes: 256 * 1024, max_age_nanos: 1_000_000_000, max_buffer_bytes: 4 * 1024 * 1024 }
    }
}

/// Why an entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The buffer holds `max_buffer_bytes` already (the sink is down or too slow).
    BufferFull,
}

#[derive(Debug)]
pub struct Batcher {
    cfg: BatchConfig,
    queue: VecDeque<(u64, LogEntry)>,
    bytes: usize,
    dropped: u64,
}

impl Batcher {
    pub fn new(cfg: BatchConfig) -> Self {
        Batcher { cfg, queue: VecDeque::new(), bytes: 0, dropped: 0 }
    }

    /// True when an entry of `encoded_len` bytes would be accepted now.
    pub fn has_room(&self, encoded_len: usize) -> bool {
        self.bytes.saturating_add(encoded_len) <= self.cfg.max_buffer_bytes
    }

    /// Counts a record the caller dropped because [`Self::has_room`] said no.
    pub fn count_drop(&mut self) {
        self.dropped = self.dropped.saturating_add(1);
    }

    pub fn push(&mut self, entry: LogEntry, now_nanos: u64) -> Result<(), Refused> {
        let len = entry.encoded_len();
        if !self.has_room(len) {
            self.count_drop();
            return Err(Refused::BufferFull);
        }
        self.bytes += len;
        self.queue.push_back((now_nanos, entry));
        Ok(())
    }

    /// A batch, when one is due by size or age.
    pub fn poll(&mut self, now_nanos: u64) -> Option<Vec<LogEntry>> {
        let oldest = self.queue.front().map(|(t, _)| *t)?;
        let aged = now_nanos.saturating_sub(oldest) >= self.cfg.max_age_nanos;
        if aged || self.bytes >= self.cfg.max_batch_bytes {
            Some(self.take_batch())
        } else {
            None
        }
    }

    /// The next batch regardless of size and age (shutdown, or draining after a send).
    pub fn flush(&mut self) -> Option<Vec<LogEntry>> {
        (!self.queue.is_empty()).then(|| self.take_batch())
    }

    /// Puts a batch that could not be sent back in front, oldest first, with `now_nanos` as its
    /// age so it is retried on the next age tick. Entries that no longer fit are dropped (counted).
    pub fn requeue(&mut self, batch: Vec<LogEntry>, now_nanos: u64) {
        for entry in batch.into_iter().rev() {
            let len = entry.encoded_len();
            if self.has_room(len) {
                self.bytes += len;
                self.queue.push_front((now_nanos, entry));
            } else {
                self.count_drop();
            }
        }
    }

    fn take_batch(&mut self) -> Vec<LogEntry> {
        let mut batch = Vec::new();
        let mut size = 0usize;
        while let Some((_, entry)) = self.queue.front() {
            let len = entry.encoded_len();
            if !batch.is_empty() && size + len > self.cfg.max_batch_bytes {
                break;
            }
            size += len;
            if let Some((_, entry)) = self.queue.pop_front() {
                batch.push(entry);
            }
        }
        self.bytes -= size;
        batch
    }

    /// Entries refused since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> LogEntry {
        LogEntry { chain_id: "c".into(), record: vec![7; n] }
    }

    fn cfg() -> BatchConfig {
        BatchConfig { max_batch_bytes: 100, max_age_nanos: 1_000, max_buffer_bytes: 250 }
    }

    #[test]
    fn sends_when_full_enough_or_old_enough() {
        let mut b = Batcher::new(cfg());
        b.push(entry(40), 0).unwrap(); // 42 bytes each with tag and length
        assert_eq!(b.poll(999), None);
        assert_eq!(b.poll(1_000).map(|v| v.len()), Some(1));
        b.push(entry(40), 2_000).unwrap();
        b.push(entry(40), 2_001).unwrap();
        assert_eq!(b.poll(2_002), None); // 84 < 100
        b.push(entry(40), 2_003).unwrap(); // 126 >= 100: the batch takes what fits (2 entries)
        assert_eq!(b.poll(2_004).map(|v| v.len()), Some(2));
        assert_eq!(b.len(), 1);
        assert_eq!(b.flush().map(|v| v.len()), Some(1));
        assert_eq!(b.flush(), None);
        assert_eq!(b.buffered_bytes(), 0);
    }

    #[test]
    fn a_full_buffer_refuses_and_counts() {
        let mut b = Batcher::new(cfg());
        for i in 0..5 {
            b.push(entry(40), i).unwrap();
        }
        assert!(!b.has_room(42));
        assert_eq!(b.push(entry(40), 6), Err(Refused::BufferFull));
        assert_eq!(b.dropped(), 1);
        // An oversized entry still goes out alone once accepted.
        let mut big = Batcher::new(BatchConfig { max_buffer_bytes: 1_000, ..cfg() });
        big.push(entry(300), 0).unwrap();
        assert_eq!(big.poll(0).map(|v| v.len()), Some(1));
    }

    #[test]
    fn a_requeued_batch_goes_first_and_in_order() {
        let mut b = Batcher::new(cfg());
        b.push(entry(1), 0).unwrap();
        b.push(entry(2), 0).unwrap();
        let batch = b.flush().unwrap();
        b.push(entry(3), 5).unwrap();
        b.requeue(batch, 10);
        let lens: Vec<usize> = b.flush().unwrap().iter().map(|e| e.record.len()).collect();
        assert_eq!(lens, [1, 2, 3]);
    }
}
