//! Canonical bytes of a receipt someone else wrote: the parsed JSON re-emitted in Go declaration
//! order with Go's `omitempty` rules, field types checked on the way. The field tables mirror the
//! newest Go `ActionRecord` (the union pipelock-verify 0.4 accepts), except `session_control`,
//! which we report as unsupported rather than guess.

use serde_json::{Map, Value};

use super::json::{write_str, Obj};

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Uint,
    Int,
    Bool,
    StrList,
    /// `delegation_chain`: a string list or `null`, never omitted.
    StrListOrNull,
    /// A struct pointer: emitted whenever present as an object, even `{}`.
    Obj(&'static [Field]),
    ObjList(&'static [Field]),
    /// `map[string]int` with keys sorted.
    IntMap,
    Unsupported,
}

struct Field {
    name: &'static str,
    omitempty: bool,
    kind: Kind,
}

const fn f(name: &'static str, omitempty: bool, kind: Kind) -> Field {
    Field { name, omitempty, kind }
}

use Kind::*;

const TAINT_SOURCE: &[Field] = &[
    f("url", false, Str),
    f("kind", false, Str),
    f("level", false, Uint),
    f("timestamp", false, Str),
    f("receipt_id", true, Str),
    f("match_reason", true, Str),
];
const REDACTION: &[Field] = &[
    f("profile", true, Str),
    f("provider", true, Str),
    f("parser", true, Str),
    f("total_redactions", true, Int),
    f("by_class", true, IntMap),
    f("cache_boundary_kept", true, Bool),
];
const SHIELD: &[Field] = &[
    f("pipeline", true, Str),
    f("total_rewrites", true, Int),
    f("extension_probes", true, Int),
    f("tracking_beacons", true, Int),
    f("agent_traps", true, Int),
    f("fingerprint_shim_injected", true, Bool),
    f("svg_foreign_objects", true, Int),
    f("svg_event_handlers", true, Int),
    f("svg_external_references", true, Int),
    f("svg_hidden_text", true, Int),
    f("svg_animation_injections", true, Int),
    f("body_bytes", true, Int),
    f("scanned_bytes", true, Int),
    f("partial", true, Bool),
    f("adaptive_signals_recorded", true, Int),
    f("adaptive_signal_max_per_body", true, Int),
];
const KEY_TRANSITION: &[Field] =
    &[f("prior_signer_key", false, Str), f("prior_chain_seq", false, Uint), f("prior_chain_hash", false, Str)];

const ACTION_RECORD: &[Field] = &[
    f("version", false, Uint),
    f("action_id", false, Str),
    f("parent_action_id", true, Str),
    f("action_type", false, Str),
    f("timestamp", false, Str),
    f("principal", false, Str),
    f("actor", false, Str),
    f("delegation_chain", false, StrListOrNull),
    f("target", false, Str),
    f("intent", true, Str),
    f("data_classes_in", true, StrList),
    f("data_classes_out", true, StrList),
    f("side_effect_class", false, Str),
    f("reversibility", false, Str),
    f("policy_hash", false, Str),
    f("verdict", false, Str),
    f("decision_phase", true, Str),
    f("defer_id", true, Str),
    f("resolution_policy", true, Str),
    f("resolution_source", true, Str),
    f("session_id", true, Str),
    f("session_id_original", true, Str),
    f("session_taint_level", true, Str),
    f("session_contaminated", true, Bool),
    f("recent_taint_sources", true, ObjList(TAINT_SOURCE)),
    f("session_task_id", true, Str),
    f("session_task_label", true, Str),
    f("authority_kind", true, Str),
    f("taint_decision", true, Str),
    f("taint_decision_reason", true, Str),
    f("task_override_applied", true, Bool),
    f("contract_winning_source", true, Str),
    f("contract_live_verdict", true, Str),
    f("contract_policy_sources", true, StrList),
    f("contract_rule_id", true, Str),
    f("active_manifest_hash", true, Str),
    f("contract_hash", true, Str),
    f("contract_selector_id", true, Str),
    f("contract_generation", true, Uint),
    f("transport", false, Str),
    f("method", true, Str),
    f("layer", true, Str),
    f("pattern", true, Str),
    f("severity", true, Str),
    f("redaction", true, Obj(REDACTION)),
    f("shield", true, Obj(SHIELD)),
    f("request_id", true, Str),
    f("chain_prev_hash", false, Str),
    f("chain_seq", false, Uint),
    f("run_nonce", true, Str),
    f("key_transition", true, Obj(KEY_TRANSITION)),
    f("session_control", true, Unsupported),
    f("venue", true, Str),
    f("jurisdiction", true, Str),
    f("rulebook_id", true, Str),
    f("remedy_class", true, Str),
    f("contestation_window", true, Str),
    f("precedent_refs", true, StrList),
];

/// Canonical bytes of a parsed `action_record`, or what is wrong with its shape.
pub fn action_record(record: &Map<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(512);
    write_object(&mut out, record, ACTION_RECORD, false, "action_record")?;
    Ok(out)
}

/// Canonical bytes of a whole receipt envelope (the chain-hash input).
pub fn receipt(version: u64, record_json: &str, signature: &str, signer_key: &str, ext_raw: Option<&str>) -> String {
    let mut out = String::with_capacity(record_json.len() + 256);
    let mut o = Obj::begin(&mut out);
    o.u64("version", version);
    o.raw("action_record", record_json);
    o.str("signature", signature);
    o.str("signer_key", signer_key);
    if let Some(ext) = ext_raw {
        o.raw("ext", ext);
    }
    o.end();
    out
}

fn write_object(
    out: &mut String,
    obj: &Map<String, Value>,
    table: &[Field],
    fill_required: bool,
    path: &str,
) -> Result<(), String> {
    if let Some(unknown) = obj.keys().find(|k| !table.iter().any(|f| f.name == k.as_str())) {
        return Err(format!("{path} carries unknown field {unknown:?}"));
    }
    let mut o = Obj::begin(out);
    for field in table {
        let path = format!("{path}.{}", field.name);
        match (obj.get(field.name), field.kind) {
            (None, _) if fill_required && !field.omitempty => write_zero(o.key(field.name), field.kind),
            (None, _) => {}
            (Some(_), Unsupported) => return Err(format!("{path} is not supported by this verifier")),
            (Some(Value::Object(inner)), Obj(nested)) => {
                write_object(o.key(field.name), inner, nested, true, &path)?;
            }
            (Some(v), kind) if field.omitempty && is_go_zero(v) => {
                // Left out as Go leaves its zero value out, but only a zero of the field's own
                // type (or `null`, which Go's decoder takes for any field): `"intent": false` is
                // no empty string, and Go's decoder refuses it.
                if !v.is_null() {
                    write_typed(&mut String::new(), v, kind, &path)?;
                }
            }
            (Some(v), kind) => write_typed(o.key(field.name), v, kind, &path)?,
        }
    }
    o.end();
    Ok(())
}

fn write_zero(out: &mut String, kind: Kind) {
    match kind {
        Str => out.push_str("\"\""),
        Uint | Int => out.push('0'),
        Bool => out.push_str("false"),
        _ => out.push_str("null"),
    }
}

fn is_go_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_u64() == Some(0) || n.as_i64() == Some(0) || n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

fn write_typed(out: &mut String, v: &Value, kind: Kind, path: &str) -> Result<(), String> {
    let bad = |what: &str| Err(format!("{path} must be {what}"));
    match (kind, v) {
        (Str, Value::String(s)) => write_str(out, s),
        (Str, _) => return bad("a string"),
        (Uint, Value::Number(n)) if n.is_u64() => out.push_str(&n.to_string()),
        (Uint, _) => return bad("an unsigned integer"),
        (Int, Value::Number(n)) if n.is_i64() => out.push_str(&n.to_string()),
        (Int, _) => return bad("an integer"),
        (Bool, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (Bool, _) => return bad("a boolean"),
        (StrListOrNull, Value::Null) => out.push_str("null"),
        (StrList | StrListOrNull, Value::Array(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_typed(out, item, Str, path)?;
            }
            out.push(']');
        }
        (StrList | StrListOrNull, _) => return bad("a list of strings"),
        (ObjList(table), Value::Array(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let Value::Object(m) = item else { return bad("a list of objects") };
                write_object(out, m, table, false, path)?;
            }
            out.push(']');
        }
        (ObjList(_), _) => return bad("a list of objects"),
        (Obj(_), _) => return bad("an object"),
        (IntMap, Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut o = Obj::begin(out);
            for k in keys {
                match m.get(k) {
                    Some(Value::Number(n)) if n.is_i64() => o.key(k).push_str(&n.to_string()),
                    _ => return bad("a map of integers"),
                }
            }
            o.end();
        }
        (IntMap, _) => return bad("a map of integers"),
        (Unsupported, _) => return bad("absent (not supported by this verifier)"),
    }
    Ok(())
}
