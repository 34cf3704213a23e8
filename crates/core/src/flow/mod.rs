//! One stream through the filter, between the host ports and the pure core:
//!
//! - [`request`]: the request path as gather → decide → apply ([`RequestFlow`]);
//! - `gather`: what it reads of the stream before deciding (the head, the peer facts);
//! - [`decide`]: the pure decision on a valid request (principal, policy, reply, inspectors);
//! - [`batch`]: the same for every element of a legacy batch (`eras.legacy_batches`);
//! - [`response`]: the response pipeline, fed headers, body chunks and SSE events;
//! - [`reply`]: every local reply and JSON-RPC error the filter sends;
//! - [`decoy`]: a hidden tool or prompt answered by its upstream (`hidden_answer: upstream`);
//! - [`exchange`]: the record of the exchange for the receipt writer;
//! - [`vm`]: what one worker VM remembers between its streams.

pub mod batch;
pub mod decide;
pub mod decoy;
pub mod exchange;
mod gather;
pub mod reply;
pub mod request;
pub mod response;
pub mod vm;

pub use decide::Outcome;
pub use exchange::ExchangeStats;
pub use request::RequestFlow;
pub use vm::VmCache;
