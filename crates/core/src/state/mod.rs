//! Bounded state over the [`Kv`](crate::ports::Kv) port (Envoy shared data): fixed-size slot
//! tables ([`slots`]) whatever the number of principals, and the rate limiter's token buckets on
//! them ([`ratelimit`]). Keys are namespaced and versioned (`mcpw/v1/<table>/<slot>`).

pub mod ratelimit;
pub mod slots;
