//! Memory across requests without sessions. Under 2026-07-28 any request may land on any
//! replica and nothing names a session, so what Pipelock keys by session is keyed here by the
//! correlation key (principal + upstream + client fingerprint) and by task id, kept in Envoy
//! shared data (per pod: [`table`]) and, for budgets, in an Envoy global rate limit service
//! (mesh-wide: [`mesh`]).
//!
//! One CAS update of one bounded [`record::Record`] per request and key does everything:
//! - **entropy budget** ([`entropy`], [`window`]): bits sent in argument strings per sliding
//!   window; over it, the key is held for the cool-down (or warned);
//! - **fragments**: the tail of recent outbound values joined to this request's, re-scanned by
//!   the content scan's secret detectors ([`crate::content_scan::secret_across`]);
//! - **chains** ([`chains`]): ordered category patterns over the key's recent tool calls;
//! - **escalation** ([`escalation`]): findings raise a decaying score; at `block_at` the key is
//!   held.
//!
//! A task's record ([`task_key`]) keeps the same budget over the task's life: inputs sent with
//! `tasks/update`, outputs in `tasks/get` results and `notifications/tasks` events
//! ([`TaskDrip`]).

pub mod chains;
pub mod entropy;
pub mod escalation;
pub mod mesh;
pub mod record;
pub mod values;
pub mod window;

use crate::content_scan::secret_across;
use crate::inspect::{read_object, Disposition, ExchangeView, Finding, Inspector, Rewrite, Severity};
use crate::mcp::Method;
use crate::policy::correlate::{BenignShape, CorrelationPolicy, TripAction};
use crate::policy::scan::{ScanPolicy, Subject};
use crate::ports::{Fault, Kv};
use crate::scan::view::{view, View};
use crate::state::slots::{SlotTable, StoreError};

use self::entropy::{benign, Estimator};
use self::record::{CallMark, Hold, Record, TAIL};

/// Findings' `inspector`, receipts' `layer`.
pub const INSPECTOR: &str = "correlation";
/// Bytes of a request's values read across the seam with the tail (a secret up to [`TAIL`]
/// bytes long, split anywhere, is found).
const SEAM_READ: usize = TAIL + 32;

/// The shared table of records: keys `mcpw/v1/cr/<slot>`.
pub fn table(slots: u32) -> SlotTable {
    SlotTable::exact("cr", slots, 4)
}

/// The record key of a correlation key.
pub fn key_of(correlation: &str) -> String {
    let mut k = String::with_capacity(2 + correlation.len());
    k.push_str("k/");
    k.push_str(correlation);
    k
}

/// The record key of a task (ids are unique per upstream).
pub fn task_key(upstream: &str, task: &str) -> String {
    format!("t/{upstream}\0{task}")
}

/// What one message sends out, measured once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sends {
    /// Shannon bits of the counted values.
    pub bits: u64,
    /// The first [`SEAM_READ`] bytes of the values, joined.
    pub head: Vec<u8>,
    /// The last [`TAIL`] bytes of the values, joined.
    pub last: Vec<u8>,
    /// How many bytes the joined values have.
    pub len: usize,
}

impl Sends {
    /// Nothing sent: no bits and nothing for the fragment tail.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.bits == 0
    }
}

/// The values of `message` (see [`values`]), measured; `None` when the message has no view.
pub fn measure(policy: &CorrelationPolicy, message: &[u8]) -> Option<Sends> {
    let v = view(message).ok()?;
    Some(measure_view(policy, message, &v))
}

/// [`measure`] on a view already made.
pub fn measure_view(policy: &CorrelationPolicy, message: &[u8], v: &View<'_>) -> Sends {
    let mut sends = Sends::default();
    let sent = values::outbound(message, v);
    if sent.strings.is_empty() && sent.scalars.is_empty() {
        return sends;
    }
    let b = &policy.budget;
    let echo = b.ignore.contains(&BenignShape::Echo);
    let mut e = Estimator::default();
    if sent.scalars.len() >= b.min_value_bytes {
        sends.bits += e.bits(&sent.scalars);
    }
    // The values that join the fragment tail, in order.
    let mut joined: Vec<&[u8]> = Vec::with_capacity(sent.strings.len());
    for (i, ((s, t), is_key)) in sent.strings.iter().enumerate() {
        let value = v.text.get(*s..*t).unwrap_or_default();
        if value.is_empty() || benign(value, &b.ignore) {
            continue;
        }
        if !is_key {
            joined.push(value);
        }
        // Keys count their bits but do not join the tail (pieces sent under the same key each
        // time would be cut apart by it); pieces shorter than the floor still join it.
        if value.len() < b.min_value_bytes {
            continue;
        }
        // An echo: the same value among the 64 before it counts once (bounded: a message of many
        // values costs linear time).
        let repeated = echo
            && sent
                .strings
                .get(i.saturating_sub(64)..i)
                .unwrap_or_default()
                .iter()
                .any(|((a, z), _)| v.text.get(*a..*z) == Some(value));
        if !repeated {
            sends.bits += e.bits(value);
        }
    }
    sends.len = joined.iter().map(|j| j.len()).sum();
    sends.head.reserve(SEAM_READ.min(sends.len));
    for j in &joined {
        let room = SEAM_READ - sends.head.len();
        if room == 0 {
            break;
        }
        sends.head.extend_from_slice(j.get(..room.min(j.len())).unwrap_or_default());
    }
    // The last TAIL bytes, gathered back to front.
    let mut need = TAIL.min(sends.len);
    let mut parts: Vec<&[u8]> = Vec::new();
    for j in joined.iter().rev() {
        if need == 0 {
            break;
        }
        let take = need.min(j.len());
        parts.push(j.get(j.len() - take..).unwrap_or_default());
        need -= take;
    }
    sends.last.reserve(TAIL.min(sends.len));
    for p in parts.iter().rev() {
        sends.last.extend_from_slice(p);
    }
    sends
}

/// One request, as the correlation checks see it.
pub struct Call<'a> {
    /// [`key_of`] the correlation key.
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

fn finding(what: &'static str, severity: Severity, disposition: Disposition) -> Finding {
    Finding { inspector: INSPECTOR, what, severity, data_class: None, fault: Fault::Client, disposition }
}

fn disposition(a: TripAction) -> Disposition {
    if a == TripAction::Block {
        Disposition::Block
    } else {
        Disposition::Report
    }
}

/// A byte a token can be made of (keys, tokens, base64 / hex runs, URLs with credentials,
/// `name=value` pairs): a secret that crosses the seam runs through such bytes on both sides.
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+/=_-.~:@%?&!$*#".contains(&b)
}

/// Context kept left of a crossing run: what keyed detectors read before a value
/// (`password=`, `Authorization: Bearer `).
const SEAM_CONTEXT: usize = 40;

/// The part of `tail` (from) and `head` (to) a secret crossing the seam can lie in: the run of
/// token bytes (or of digits and separators: a card number cut at a space) that crosses it, with
/// some context on the left. `None` when no run crosses it (nothing to read; the common case for
/// prose, whose pieces meet at a space). Bounds the re-scan by what a secret could be, not by
/// the tail.
fn seam_window(tail: &[u8], head: &[u8]) -> Option<(usize, usize)> {
    if tail.is_empty() || head.is_empty() {
        return None;
    }
    let digits = |b: u8| b.is_ascii_digit() || b == b' ' || b == b'-';
    let run = |class: &dyn Fn(u8) -> bool| {
        let left = tail.iter().rev().take_while(|b| class(**b)).count();
        let right = head.iter().take_while(|b| class(**b)).count();
        (left > 0 && right > 0).then_some((left, right))
    };
    let (left, right) = match (run(&token_byte), run(&digits)) {
        (None, None) => return None,
        (Some(a), None) | (None, Some(a)) => a,
        (Some((l1, r1)), Some((l2, r2))) => (l1.max(l2), r1.max(r2)),
    };
    let from = tail.len().saturating_sub(left + SEAM_CONTEXT);
    // The right side ends where the run does, plus a byte for the validators' boundary check.
    Some((from, (right + 1).min(head.len())))
}

/// What evicting a record loses: nothing once it is spent, else what it still remembers.
fn eviction_cost(now_ms: u64, window_ms: u64) -> impl Fn(&[u8]) -> u64 {
    move |bytes: &[u8]| {
        let r = Record::decode(Some(bytes));
        if r.is_spent(now_ms, window_ms) {
            0
        } else {
            r.held_until_ms.saturating_sub(now_ms) + u64::from(r.score_milli) + u64::from(r.window_bits) + 1
        }
    }
}

/// Checks and accounts one request of a correlation key (and of its task). Pure over `kv`: one
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
            let (trip, findings, error) = spend_task(policy, kv, task, bits, None, call.acts, now);
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
    let window = sends.filter(|_| policy.fragments != TripAction::Off).and_then(|s| seam_window(&rec.tail, &s.head));
    if let Some((from, to)) = window {
        let mut text = Vec::with_capacity(rec.tail.len() + SEAM_READ);
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
                hold_for_budget(rec, b.cooldown_ms, now);
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
            if s.len >= TAIL {
                rec.tail.clone_from(&s.last);
            } else {
                rec.tail.extend_from_slice(&s.last);
                let cut = rec.tail.len().saturating_sub(TAIL);
                rec.tail.drain(..cut);
            }
        }
        if let Some(m) = mark {
            rec.calls.push(m);
            let cut = rec.calls.len().saturating_sub(record::CALLS);
            rec.calls.drain(..cut);
        }
    }
    true
}

/// Holds a key that spent its budget for the cool-down; the cool-down is the penalty, so the
/// key starts a fresh window when it ends.
fn hold_for_budget(rec: &mut Record, cooldown_ms: u64, now: u64) {
    rec.hold = Some(Hold::Budget);
    rec.held_until_ms = now.saturating_add(cooldown_ms);
    rec.window_start_ms = rec.held_until_ms;
    rec.window_bits = 0;
    rec.previous_bits = 0;
}

/// Spends `bits` of the task record `task`: over the task budget, the task is held for the
/// cool-down (block) or reported (warn). `output`: the fingerprint of an answer's strings; the
/// same answer again (a client polling a task that has not moved) spends nothing.
fn spend_task(
    policy: &CorrelationPolicy,
    kv: &mut dyn Kv,
    task: &str,
    bits: u64,
    output: Option<u64>,
    acts: bool,
    now: u64,
) -> (Option<Trip>, Vec<Finding>, Option<StoreError>) {
    let b = &policy.budget;
    if b.action == TripAction::Off || (bits == 0 && !acts) {
        return (None, Vec::new(), None);
    }
    let t = table(policy.slots);
    let cost = eviction_cost(now, b.window_ms);
    let r = t.update(kv, task.as_bytes(), now, &cost, |cur| {
        let mut rec = Record::decode(cur);
        if rec.held_until_ms > now {
            let f = finding("held", Severity::Warning, Disposition::Block);
            return (None, (Some(Trip::Held { hold: Hold::Budget, until_ms: rec.held_until_ms }), vec![f]));
        }
        let seen = output.map(u64::to_le_bytes);
        if bits == 0 || (seen.is_some() && seen.as_ref().map(|s| s.as_slice()) == Some(rec.tail.as_slice())) {
            return (None, (None, Vec::new()));
        }
        window::roll(&mut rec, b.window_ms, now);
        let after = window::spent(&rec, b.window_ms, now).saturating_add(bits);
        let mut findings = Vec::new();
        let mut trip = None;
        if after > b.task_bits {
            let d = disposition(b.action);
            findings.push(finding("task_entropy_budget", Severity::High, d));
            if d == Disposition::Block {
                hold_for_budget(&mut rec, b.cooldown_ms, now);
                trip = Some(Trip::Held { hold: Hold::Budget, until_ms: rec.held_until_ms });
            }
        }
        if trip.is_none() {
            window::add(&mut rec, bits);
            if let Some(s) = seen {
                rec.tail = s.to_vec();
            }
        }
        (Some(rec.encode()), (trip, findings))
    });
    match r {
        Ok((trip, findings)) => (trip, findings, None),
        Err(e) => (None, vec![Finding::store_error(INSPECTOR, Disposition::Report)], Some(e)),
    }
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

/// The response inspector for task outputs: every `tasks/get` answer and every
/// `notifications/tasks` event (on a `subscriptions/listen` stream) spends the task's budget
/// with the bits of its result's strings. Over the budget under `block`, the message is
/// withheld (the task is held for the cool-down; its next `tasks/get` is refused).
pub struct TaskDrip {
    policy: std::rc::Rc<crate::policy::Policy>,
}

impl TaskDrip {
    pub fn new(policy: std::rc::Rc<crate::policy::Policy>) -> TaskDrip {
        TaskDrip { policy }
    }
}

impl Inspector for TaskDrip {
    fn name(&self) -> &'static str {
        INSPECTOR
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        let c = &self.policy.correlation;
        // Only messages that carry a task: a tasks/get answer, or a task notification.
        let task_id = match ex.request.op {
            Some(Method::TasksGet | Method::TasksResult) => ex.request.handles.task_id.clone(),
            _ => None,
        };
        let is_event = ex.request.op == Some(Method::SubscriptionsListen);
        if task_id.is_none() && !is_event {
            return Rewrite::Keep;
        }
        let Some(obj) = read_object(INSPECTOR, message, findings) else { return Rewrite::Keep };
        let (task, payload) = if is_event {
            if obj.get("method").and_then(|m| m.as_str()) != Some("notifications/tasks") {
                return Rewrite::Keep;
            }
            let params = obj.get("params");
            (params.and_then(|p| p.get("taskId")).and_then(|t| t.as_str()).map(str::to_owned), params)
        } else {
            (task_id, obj.get("result"))
        };
        let (Some(task), Some(payload)) = (task, payload) else { return Rewrite::Keep };
        let mut e = Estimator::default();
        let mut bits = 0u64;
        let mut strings = Vec::new();
        collect_strings(payload, &mut strings, 0);
        // FNV-1a over the strings: the answer's fingerprint.
        let mut print: u64 = 0xcbf2_9ce4_8422_2325;
        for s in strings {
            for b in s.bytes().chain([0]) {
                print = (print ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            if s.len() >= c.budget.min_value_bytes && !benign(s.as_bytes(), &c.budget.ignore) {
                bits += e.bits(s.as_bytes());
            }
        }
        let key = task_key(ex.upstream, &task);
        let (_, found, _) = spend_task(c, state, &key, bits, Some(print), false, ex.now_ms);
        // A Block finding withholds the message (the flow's rule for every inspector).
        findings.extend(found.into_iter().map(|f| Finding { fault: Fault::Upstream, ..f }));
        Rewrite::Keep
    }
}

fn collect_strings<'v>(v: &'v serde_json::Value, out: &mut Vec<&'v str>, depth: usize) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) if depth < 64 => a.iter().for_each(|x| collect_strings(x, out, depth + 1)),
        serde_json::Value::Object(o) if depth < 64 => o.iter().for_each(|(_, x)| collect_strings(x, out, depth + 1)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seam_window_is_the_token_that_crosses_it() {
        // Prose meets at a space: nothing crosses, nothing to read.
        assert_eq!(seam_window(b"lorem ipsum dolor ", b"sit amet"), None);
        assert_eq!(seam_window(b"lorem ipsum dolor", b" sit amet"), None);
        // A token cut anywhere: the run on both sides, 40 bytes of context on the left.
        let tail = [b"x".repeat(60).as_slice(), b" key=ghp_R7c0aWq1"].concat();
        let (from, to) = seam_window(&tail, b"zXy2Lm3N rest").unwrap();
        assert_eq!(tail.len() - from, "key=ghp_R7c0aWq1".len() + SEAM_CONTEXT);
        assert_eq!(to, 9, "the run and one byte past it");
        // A card number cut at a space still crosses (digits and separators).
        assert!(seam_window(b"card 4111 1111 ", b"1111 1111").is_some());
        assert_eq!(seam_window(b"", b"abc"), None);
    }
}
