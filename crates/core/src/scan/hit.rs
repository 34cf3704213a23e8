//! What the scanner reports: a [`Hit`] says what was [`Found`] and where, in the scanned view.

use super::catalog::Span;

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Found {
    /// A configured canary (its index in the policy's list).
    Canary(usize),
    /// A detector of [`super::DETECTORS`] (its index).
    Detector(usize),
    /// An injected instruction of this family ([`super::phrases::FAMILIES`]).
    Injection(usize),
}

/// One thing found, where it is in the view, and whether it was found only once decoded
/// (its span is then the encoded run, or the whole string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub found: Found,
    pub span: Span,
    pub decoded: bool,
}
