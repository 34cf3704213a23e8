//! Bounded state over the [`Kv`](crate::ports::Kv) port (Envoy shared data): fixed-size slot
//! tables ([`slots`]) whatever the number of principals, and the rate limiter's token buckets on
//! them ([`ratelimit`]), legacy sessions bound to their principal ([`sessions`]). Keys are
//! namespaced and versioned (`mcpw/v1/<table>/<slot>`).

pub mod ratelimit;
pub mod sessions;
pub mod slots;
