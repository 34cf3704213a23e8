//! How a run of bytes found by the run pass ([`super::runs`], [`super::spread`]) is written, and
//! so how the scanner reads it back ([`super::engine`]).

/// How a run worth decoding is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Base64,
    Hex,
    /// RFC 4648 base32 (`A-Z2-7`, either case, padding optional).
    Base32,
    /// Short groups with the same bytes between them ([`super::spread`]): joined, then read as
    /// they are and, when the join is an encoded run, decoded.
    Grouped,
    /// Small decimal numbers, one per byte.
    Decimal,
    /// Hex bytes one by one (`67 68`, `67:68`, `\x67\x68`, `0x67, 0x68`): read decoded only
    /// (their digits joined are a number, not a value).
    HexBytes,
    /// One run with a separator between its characters.
    Interleaved,
}
