//! Content scanning in both directions: credentials, keys and personal numbers, configured
//! canaries, and instructions injected into what the model reads: the scanner, below the policy
//! (it knows no settings but the canaries it is built with). [`crate::content_scan`] turns a scan
//! into findings and rewrites under the policy's [`crate::policy::scan`] settings, and the flow
//! acts on them.
//!
//! - [`automaton`]: the Aho–Corasick DFA the anchors are found with.
//! - [`catalog`]: the detectors (ids, data classes, anchors, rules).
//! - [`engine`]: the scanner (one Aho–Corasick pass and one run pass; one level of decoding;
//!   folded text for injected instructions), bounded by a byte budget; [`hit`]: what it reports.
//! - [`encoding`]: how a run is written (base64, hex, bytes one by one, …).
//! - [`runs`]: the run pass (cards, SSNs, IBANs, WIF keys, seed phrases, runs worth decoding);
//!   [`spread`]: values written apart (spaced characters, hex or decimal bytes, short lines).
//! - [`view`]: the decoded view of a JSON message, and the one-level decoders.
//! - [`shapes`], [`numbers`], [`wallet`]: the validators (token shapes; Luhn, mod-97, SSN rules;
//!   base58check and BIP-39 checksums).
//! - [`phrases`]: the injected-instruction phrase families; [`override_grammar`]: the override
//!   grammar and the gaps between words; [`patterns`]: the instructions whose wording varies,
//!   as word-set patterns; [`injection_shapes`]: the ones told by their markup (an image
//!   address with a slot for data, a heading that speaks as the system).
//! - [`redact`]: a message with what was found replaced, still valid JSON.
//! - [`chars`]: byte classes.

pub mod automaton;
pub mod catalog;
pub mod chars;
pub mod encoding;
pub mod engine;
pub mod hit;
pub mod injection_shapes;
pub mod numbers;
pub mod override_grammar;
pub mod password_shapes;
pub mod patterns;
pub mod phrases;
pub mod placeholder;
pub mod redact;
pub mod runs;
pub mod shapes;
pub mod spread;
pub mod view;
pub mod wallet;

pub use catalog::{DataClass, Detector, DETECTORS};
pub use engine::{Scan, Scanner};
pub use hit::{Found, Hit};
