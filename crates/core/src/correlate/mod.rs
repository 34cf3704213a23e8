//! Memory across requests without sessions. Under 2026-07-28 any request may land on any
//! replica and nothing names a session, so what Pipelock keys by session is keyed here by the
//! caller at one upstream ([`Caller`]: a named principal, or an anonymous caller's address)
//! and by task id, kept in Envoy
//! shared data (per pod: [`table`]) and, for budgets, in an Envoy global rate limit service
//! (mesh-wide: [`mesh`]).
//!
//! One CAS update of one bounded [`record::Record`] per request and key does everything:
//! - **entropy budget** ([`entropy`], [`window`]): bits sent in argument strings per sliding
//!   window; over it, the key is held for the cool-down (or warned);
//! - **fragments** ([`fragments`]): the tail of recent outbound values joined to this
//!   request's, re-scanned by the content scan's secret detectors where a token crosses the seam;
//! - **chains** ([`chains`]): ordered category patterns over the key's recent tool calls;
//! - **escalation** ([`escalation`]): findings raise a decaying score; at `block_at` the key is
//!   held.
//!
//! What a message sends is measured once ([`sends`], on [`values`] and [`entropy`]). A task's
//! record ([`task_key`]) keeps the same budget over the task's life ([`tasks`]): inputs sent
//! with `tasks/update`, outputs in `tasks/get` results and `notifications/tasks` events
//! ([`TaskDrip`]).

pub mod chains;
pub mod entropy;
pub mod escalation;
pub mod fragments;
pub mod mesh;
pub mod record;
pub mod sends;
pub mod tasks;
pub mod values;
pub mod window;

pub use sends::{measure, measure_view, Sends};
pub use tasks::TaskDrip;

use crate::content_scan::secret_across;
use crate::inspect::{Disposition, Finding, Severity};
use crate::mcp::Method;
use crate::policy::correlate::{CorrelationPolicy, TripAction};
use crate::policy::scan::{ScanPolicy, Subject};
use crate::ports::{Fault, Kv};
use crate::principal::{client_address, Origin, Principal};
use crate::state::slots::{SlotTable, StoreError};

use self::record::{CallMark, Hold, Record, TAIL};

/// Findings' `inspector`, receipts' `layer`.
pub const INSPECTOR: &str = "correlation";
/// The shared table of records: keys `mcpw/v1/cr/<slot>`.
pub fn table(slots: u32) -> SlotTable {
    SlotTable::exact("cr", slots, 4)
}

/// Whom the memory and the mesh-wide budgets are kept for: what a client cannot change at
/// will. A named principal by its key (delegation chain included); an anonymous one by its
/// network address. Not the correlation key: its client fingerprint includes the user agent,
/// which a client rotates freely, and every new agent string would be a fresh budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    Named(&'a str),
    Anonymous(&'a str),
}

impl<'a> Caller<'a> {
    pub fn of(principal: &Principal, principal_key: &'a str, source_address: Option<&'a str>) -> Caller<'a> {
        if principal.origin == Origin::Anonymous {
            Caller::Anonymous(client_address(source_address))
        } else {
            Caller::Named(principal_key)
        }
    }

    /// The record key of this caller at `upstream`.
    pub fn memory_key(self, upstream: &str) -> String {
        let (prefix, who) = match self {
            Caller::Named(k) => ("k/", k),
            Caller::Anonymous(a) => ("a/", a),
        };
        let mut k = String::with_capacity(3 + who.len() + upstream.len());
        k.push_str(prefix);
        k.push_str(who);
        k.push('\0');
        k.push_str(upstream);
        k
    }

    /// The `principal` entry of its mesh-wide descriptors.
    pub fn descriptor(self) -> String {
        match self {
            Caller::Named(k) => k.to_owned(),
            Caller::Anonymous(a) => format!("anon:{a}"),
        }
    }
}

/// The record key of an already-derived identity string (tests, tools).
pub fn key_of(identity: &str) -> String {
    let mut k = String::with_capacity(2 + identity.len());
    k.push_str("k/");
    k.push_str(identity);
    k
}

/// The record key of a task (ids are unique per upstream).
pub fn task_key(upstream: &str, task: &str) -> String {
    format!("t/{upstream}\0{task}")
}

/// One request, as the correlation checks see it.
pub struct Call<'a> {
    /// The record key ([`Caller::memory_key`]).
    pub key: &'a str,
    /// [`task_key`], when the request acts on a task.
    pub task: Option<String>,
    /// The tool of a `tools/call` (chains).
    pub tool: Option<&'a str>,
    /// The tool's categories from its annotations, as its baseline recorded them (0: none).
    pub annotated: u8,
    /// What it sends (`None`: nothing read).
    pub sends: Option<&'a Sends>,
    /// Escalation points of what the request's other checks found.
    pub points: u32,
    /// A held key's requests of this kind are refused (calls, reads, task inputs).
    pub acts: bool,
    /// The request was refused already: nothing is sent, only its points count.
    pub refused: bool,
    pub now_ms: u64,
}

/// Why the correlation checks refuse a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trip {
    /// The key (or task) is held until `until_ms`.
    Held { hold: Hold, until_ms: u64 },
    /// This request's values complete a secret sent in pieces.
    Fragment { what: &'static str, class: Option<&'static str> },
    /// This call completes a chain.
    Chain { id: String },
}

/// What the correlation checks concluded about one request.
#[derive(Debug, Default)]
pub struct Assessment {
    pub trip: Option<Trip>,
    pub findings: Vec<Finding>,
    pub store_error: Option<StoreError>,
}

pub(crate) fn finding(what: &'static str, severity: Severity, disposition: Disposition) -> Finding {
    Finding { inspector: INSPECTOR, what, severity, data_class: None, fault: Fault::Client, disposition }
}

pub(crate) fn disposition(a: TripAction) -> Disposition {
    if a == TripAction::Block {
        Disposition::Block
    } else {
        Disposition::Report
    }
}

/// What evicting a record loses: nothing once it is spent, else what it still remembers. A held
/// record is never evicted for another key while the hold lasts: a caller that lands records in
/// its window must not release it (the newcomer goes unrecorded instead, a counted store error
/// that `on_store_error: deny` refuses).
pub(crate) fn eviction_cost(now_ms: u64, window_ms: u64) -> impl Fn(&[u8]) -> u64 {
    move |bytes: &[u8]| {
        let r = Record::decode(Some(bytes));
        if r.held_until_ms > now_ms {
            crate::state::slots::NEVER_EVICT
        } else if r.is_spent(now_ms, window_ms) {
            0
        } else {
            u64::from(r.score_milli) + u64::from(r.window_bits) + 1
        }
    }
}

/// Checks and accounts one request of a caller (and of its task). Pure over `kv`: one
/// CAS update per key.
pub fn account(
    policy: &CorrelationPolicy,
    scan: &ScanPolicy,
    subject: &Subject<'_>,
    kv: &mut dyn Kv,
    call: &Call<'_>,
) -> Assessment {
    let mut out = Assessment::default();
    if !policy.enabled {
        return out;
    }
    let t = table(policy.slots);
    let now = call.now_ms;
    let cost = eviction_cost(now, policy.budget.window_ms);
    let r = t.update(kv, call.key.as_bytes(), now, &cost, |cur| {
        let mut rec = Record::decode(cur);
        let mut a = Assessment::default();
        let write = check_key(policy, scan, subject, call, &mut rec, &mut a);
        (write.then(|| rec.encode()), a)
    });
    match r {
        Ok(a) => out = a,
        Err(e) => {
            out.findings.push(Finding::store_error(INSPECTOR, Disposition::Report));
            out.store_error = Some(e);
        }
    }
    if out.trip.is_none() && !call.refused {
        if let Some(task) = &call.task {
            let bits = call.sends.map_or(0, |s| s.bits);
            let (trip, findings, error) = tasks::spend_task(policy, kv, task, bits, None, call.acts, now);
            out.trip = trip;
            out.findings.extend(findings);
            out.store_error = out.store_error.or(error);
        }
    }
    out
}

/// The key's own checks on `rec`, in order; returns whether the record changed.
fn check_key(
    policy: &CorrelationPolicy,
    scan: &ScanPolicy,
    subject: &Subject<'_>,
    call: &Call<'_>,
    rec: &mut Record,
    a: &mut Assessment,
) -> bool {
    let now = call.now_ms;
    let b = &policy.budget;
    let x = &policy.escalation;
    if call.acts && rec.held_until_ms > now {
        let hold = rec.hold.unwrap_or(Hold::Budget);
        a.findings.push(finding("held", Severity::Warning, Disposition::Block));
        a.trip = Some(Trip::Held { hold, until_ms: rec.held_until_ms });
        return false;
    }
    window::roll(rec, b.window_ms, now);
    escalation::decay(rec, x.half_life_ms, now);
    let mut points = call.points;
    let sends = call.sends.filter(|s| !s.is_empty() && !call.refused);

    // Fragments: the tail and this request's first bytes, read across the seam.
    let window = sends.filter(|_| policy.fragments != TripAction::Off).and_then(|s| fragments::seam_window(&rec.tail, &s.head));
    if let Some((from, to)) = window {
        let mut text = Vec::with_capacity(rec.tail.len() + sends::SEAM_READ);
        text.extend_from_slice(rec.tail.get(from..).unwrap_or_default());
        text.extend_from_slice(sends.map(|s| s.head.get(..to).unwrap_or(&s.head)).unwrap_or_default());
        if let Some(f) = secret_across(scan, subject, &text, rec.tail.len() - from) {
            points += 3;
            let d = disposition(policy.fragments);
            a.findings.push(Finding { inspector: INSPECTOR, what: "fragmented_secret", disposition: d, ..f.clone() });
            if d == Disposition::Block {
                a.trip = Some(Trip::Fragment { what: f.what, class: f.data_class });
            }
        }
    }

    // Chains: this call after the key's recent ones.
    let mark = call
        .tool
        .map(|tool| CallMark { at_secs: (now / 1000) as u32, categories: chains::categories(policy, tool, call.annotated) });
    if let (Some(m), true) = (mark, policy.chains != TripAction::Off && !call.refused) {
        if let Some(p) = chains::completed(&policy.patterns, &rec.calls, m) {
            points += p.severity.points();
            let severity = match p.severity {
                crate::policy::correlate::ChainSeverity::Medium => Severity::Warning,
                crate::policy::correlate::ChainSeverity::High => Severity::High,
                crate::policy::correlate::ChainSeverity::Critical => Severity::Critical,
            };
            let d = disposition(p.action);
            a.findings.push(finding("tool_chain", severity, d));
            if d == Disposition::Block && a.trip.is_none() {
                a.trip = Some(Trip::Chain { id: p.id.clone() });
            }
        }
    }

    // The budget: over it, the key is held (block) or reported (warn), once per crossing.
    let bits = sends.map_or(0, |s| s.bits);
    if b.action != TripAction::Off && bits > 0 && a.trip.is_none() {
        let before = window::spent(rec, b.window_ms, now);
        let after = before.saturating_add(bits);
        if after > b.bits {
            if before <= b.bits {
                points += 2;
            }
            let d = disposition(b.action);
            a.findings.push(finding("entropy_budget", Severity::High, d));
            if d == Disposition::Block {
                tasks::hold_for_budget(rec, b.cooldown_ms, now);
                a.trip = Some(Trip::Held { hold: Hold::Budget, until_ms: rec.held_until_ms });
            }
        }
    }

    // Escalation: this request's points, then the thresholds.
    if x.action != TripAction::Off && points > 0 {
        escalation::raise(rec, points);
        let score = escalation::score(rec);
        if score >= x.block_at && x.action == TripAction::Block {
            rec.hold = Some(Hold::Escalation);
            rec.held_until_ms = now.saturating_add(x.cooldown_ms);
            // The points that tripped it are spent: after the cool-down the key starts below warn.
            rec.score_milli = 0;
            a.findings.push(finding("escalated", Severity::High, Disposition::Block));
            if a.trip.is_none() {
                a.trip = Some(Trip::Held { hold: Hold::Escalation, until_ms: rec.held_until_ms });
            }
        } else if score >= x.warn_at {
            a.findings.push(finding("escalated", Severity::Warning, Disposition::Report));
        }
    }

    // What was sent is remembered; a refused request sent nothing.
    if a.trip.is_none() && !call.refused {
        if let Some(s) = sends {
            window::add(rec, bits);
            // `last` is the last TAIL bytes sent: joined to the tail, the last TAIL bytes stay.
            rec.tail.extend_from_slice(&s.last);
            let cut = rec.tail.len().saturating_sub(TAIL);
            rec.tail.drain(..cut);
        }
        if let Some(m) = mark {
            rec.calls.push(m);
            let cut = rec.calls.len().saturating_sub(record::CALLS);
            rec.calls.drain(..cut);
        }
    }
    true
}

/// True when a held key's request of this method is refused: what acts or sends (calls, reads,
/// prompts, completions, task inputs, a client's answers); discovery, pings and cancellation
/// still pass so the agent can see why and stop.
pub fn acts(op: Option<Method>, sends_something: bool) -> bool {
    sends_something
        || matches!(
            op,
            Some(
                Method::ToolsCall
                    | Method::PromptsGet
                    | Method::ResourcesRead
                    | Method::CompletionComplete
                    | Method::TasksUpdate
                    | Method::TasksGet
                    | Method::TasksResult
            )
        )
}
