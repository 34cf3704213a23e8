//! Bounded state over the [`Kv`](crate::ports::Kv) port (Envoy shared data): fixed-size slot
//! tables ([`slots`]) whatever the number of principals, and on them the rate limiter's token
//! buckets ([`ratelimit`]), sessions and tasks bound to the principal that opened them
//! ([`owners`]), and the tool and `ui://` template baselines ([`baselines`]). Keys are
//! namespaced and versioned (`mcpw/v1/<table>/<slot>`).

pub mod baselines;
pub mod owners;
pub mod ratelimit;
pub mod slots;
