//! Configuration and policy in two stages: [`spec`] is what operators write (serde, unknown
//! fields rejected, errors name the JSON path); [`compile`](mod@compile) turns it into the immutable [`Policy`]
//! the data path uses. An invalid document never replaces a compiled policy: the caller keeps the
//! last good one.
//!
//! # Interface for the flow / host (the lead)
//!
//! ```text
//! // once per configuration (plugin config or a control-endpoint document)
//! policy::load(bytes) -> Result<Policy, ConfigError>          // ConfigError { field: JSON path, message }
//!
//! // per request, after classification
//! principal::resolve(&policy.sources, &PeerFacts { jwt_payload /* JSON */ | jwt_claims /* &dyn Claims */,
//!                    uri_san, istio_principal, trusted_header, source_address, user_agent }) -> Principal
//!     // jwt_claims: impl principal::Claims { fn string(&self, path: &[&str]) -> Option<String> } over
//!     // get_property(["metadata","filter_metadata", sources.jwt_metadata_namespace, sources.jwt_payload_key, path..])
//! principal::is_warden_header(name) -> bool                    // strip these from the request
//! CorrelationKey::new(&principal, upstream)
//! principal.upstream_headers(&key, &corr) -> [(name, value); 3]      // x-warden-principal{,-source}, x-warden-correlation
//! policy::enforce(&policy, &remote_kill, &principal, &request, upstream, &mut kv, now_ms) -> Verdict
//! verdict.local_reply(&request) -> Option<LocalReply { status, headers, body }>   // None = forward
//! verdict.dry_run: Vec<DryRunHit>, verdict.store_errors        // log / count
//!
//! // response of a forwarded tools/list
//! policy::tools_list_varies(&policy, era, upstream) -> bool    // force cacheScope private
//! policy::filter_tools_list(body, &|tool| policy::tool_visible(&policy, &principal, era, upstream, tool),
//!                           force_private) -> Option<Vec<u8>>  // Some = replace the body
//! // likewise prompts/list and resources/list: ListKind::from_list_method(method), item_visible,
//! // list_varies, filter_list(body, kind, visible, force_private)
//!
//! // shared data: implement store::Kv { get(key) -> Option<(bytes, cas)>, set(key, bytes, Option<cas)) }
//! // on configure (each VM): ratelimit::table(policy.rate_limit_slots).init(&mut kv)  // all writes become CAS
//! // control endpoint (root context tick): control::Poller::new(policy.control?)
//! //   poller.due(now_ms) -> bool;  poller.request(now_ms) -> PollRequest { cluster, headers, timeout_ms }
//! //   poller.on_response(now_ms, Some(status) | None, etag, body) -> Unchanged | Update(Box<RemoteState>) | Failed(msg)
//! //   poller.dispatch_failed(now_ms)
//! //   then enforce with remote.active(&config_policy) and remote.extra_kill(&config_policy)
//! ```
//!
//! Codes (spec §13): hidden tool/prompt/resource → 200 + `-32602`; visible deny → 403 +
//! [`eval::CODE_DENIED`]; rate limited → 429 + `Retry-After` + [`eval::CODE_RATE_LIMITED`]
//! (`data.retryAfterSeconds`); kill switch → 503 + [`eval::CODE_KILLED`] (`data.reason`, `data.scope`).

pub mod compile;
pub mod eval;
pub mod glob;
pub mod jsonpath;
pub mod spec;
pub mod tools_list;

pub use compile::{compile, load, ConfigError, ControlConfig, Policy, Rule, RuleAction};
pub use eval::{
    enforce, item_visible, list_varies, local_reply, tool_visible, tools_list_varies, Action, DryRunHit, ListKind, LocalReply,
    Verdict,
};
pub use tools_list::{filter_list, filter_tools_list};
