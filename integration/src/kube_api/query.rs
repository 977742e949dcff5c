//! The query of a node list or watch: decoding as apimachinery's parameter codec does (unknown
//! keys ignored, the first value of a repeated key wins, booleans false only for "0"/"false"),
//! `ValidateListOptions`, label and field selectors, and continue tokens.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};

use super::status::{self, FieldError};

/// A decoded and validated `ListOptions`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub watch: bool,
    /// Empty when not given (as in Go, an empty value is "unset").
    pub resource_version: String,
    pub resource_version_match: String,
    /// 0 when not given.
    pub limit: i64,
    pub continue_token: String,
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<i64>,
}

/// Percent-decodes a query component (`+` is a space, as in Go's `url.ParseQuery`).
fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .ok_or_else(|| format!("invalid URL escape {:?}", &s[i..]))?;
                let b = u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("invalid URL escape \"%{hex}\""))?;
                out.push(b);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 in the query".to_string())
}

/// The query's parameters, first value of each key.
pub fn params(query: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (unescape(k)?, unescape(v)?);
        map.entry(k).or_insert(v);
    }
    Ok(map)
}

/// apimachinery's `Convert_Slice_string_To_bool`: absent is false; "0" and "false" (any case)
/// are false; anything else, the empty string included, is true.
fn boolean(value: Option<&String>) -> Option<bool> {
    value.map(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

fn integer(name: &str, value: Option<&String>) -> Result<Option<i64>, Value> {
    match value {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            status::bad_request(&format!(
                "strconv.ParseInt: parsing {v:?}: invalid syntax (query parameter {name})"
            ))
        }),
    }
}

/// Whether the query asks for a watch (for fault targeting before full decoding).
pub fn is_watch(query: &str) -> bool {
    params(query)
        .ok()
        .and_then(|p| boolean(p.get("watch")))
        .unwrap_or(false)
}

/// Decodes and validates the query of `GET /api/v1/nodes`; the error is the `Status` to answer.
pub fn parse(query: &str, watch_list_gate: bool, force_watch: bool) -> Result<ListQuery, Value> {
    let p = params(query).map_err(|e| status::bad_request(&e))?;
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let label = LabelSelector::parse(&get("labelSelector")).map_err(|e| status::bad_request(&e))?;
    let field = FieldSelector::parse(&get("fieldSelector")).map_err(|e| status::bad_request(&e))?;
    let q = ListQuery {
        watch: force_watch || boolean(p.get("watch")).unwrap_or(false),
        resource_version: get("resourceVersion"),
        resource_version_match: get("resourceVersionMatch"),
        limit: integer("limit", p.get("limit"))?.unwrap_or(0),
        continue_token: get("continue"),
        label_selector: label,
        field_selector: field,
        allow_watch_bookmarks: boolean(p.get("allowWatchBookmarks")).unwrap_or(false),
        send_initial_events: boolean(p.get("sendInitialEvents")),
        timeout_seconds: integer("timeoutSeconds", p.get("timeoutSeconds"))?,
    };
    let errors = if q.watch {
        validate_watch(&q, watch_list_gate)
    } else {
        validate_list(&q)
    };
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(status::invalid_list_options(&errors))
    }
}

const RVM: &str = "resourceVersionMatch";

/// `ValidateListOptions` for a list.
fn validate_list(q: &ListQuery) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let m = q.resource_version_match.as_str();
    if !m.is_empty() {
        if q.resource_version.is_empty() {
            errs.push(FieldError::forbidden(
                RVM,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !q.continue_token.is_empty() {
            errs.push(FieldError::forbidden(
                RVM,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            errs.push(FieldError::NotSupported {
                field: RVM.into(),
                value: m.into(),
                supported: vec!["Exact".into(), "NotOlderThan".into(), String::new()],
            });
        }
        if m == "Exact" && q.resource_version == "0" {
            errs.push(FieldError::forbidden(
                RVM,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if q.send_initial_events.is_some() {
        errs.push(FieldError::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    errs
}

/// `validateWatchOptions`: `sendInitialEvents` needs `NotOlderThan` and the WatchList gate.
fn validate_watch(q: &ListQuery, watch_list_gate: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let m = q.resource_version_match.as_str();
    if q.send_initial_events.is_some() {
        if m != "NotOlderThan" {
            errs.push(FieldError::forbidden(
                RVM,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !watch_list_gate {
            errs.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            ));
        }
    }
    if !m.is_empty() {
        if q.send_initial_events.is_none() {
            errs.push(FieldError::forbidden(
                RVM,
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if m != "NotOlderThan" {
            errs.push(FieldError::NotSupported {
                field: RVM.into(),
                value: m.into(),
                supported: vec!["NotOlderThan".into()],
            });
        }
        if !q.continue_token.is_empty() {
            errs.push(FieldError::forbidden(
                RVM,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    errs
}

/// A resourceVersion parameter as etcd3 storage parses it; the error is a 400 `Status`.
pub fn parse_rv(rv: &str) -> Result<u64, Value> {
    rv.parse::<u64>().map_err(|_| {
        status::bad_request(&format!(
            "resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: invalid syntax"
        ))
    })
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector: requirements ANDed (`labels.Parse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Op(&'static str),
}

fn tokenize(s: &str) -> Vec<Token> {
    const OPS: [&str; 9] = ["==", "!=", "=", "!", "(", ")", ",", ">", "<"];
    let mut tokens = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if let Some(op) = OPS.into_iter().find(|o| rest.starts_with(o)) {
            tokens.push(Token::Op(op));
            rest = &rest[op.len()..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || "=!(),<>".contains(c))
                .unwrap_or(rest.len());
            tokens.push(Token::Word(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    tokens
}

/// A label key: `[prefix/]name`, name a qualified name of at most 63 characters, prefix a DNS
/// subdomain.
pub fn valid_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if !valid_subdomain(p) {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be a lowercase RFC 1123 subdomain"
            ));
        }
    }
    if !valid_label_value(name) || name.is_empty() {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 of `[-_.A-Za-z0-9]` starting and ending alphanumeric.
pub fn valid_label_value(v: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    v.is_empty()
        || (v.len() <= 63
            && alnum(v.chars().next())
            && alnum(v.chars().last())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

/// A DNS-1123 subdomain (node names and label key prefixes).
pub fn valid_subdomain(s: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && l.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    !s.is_empty() && s.len() <= 253 && s.split('.').all(label_ok)
}

impl LabelSelector {
    /// Parses a selector; the error is the `unable to parse requirement` message.
    pub fn parse(s: &str) -> Result<Self, String> {
        let tokens = tokenize(s);
        let mut reqs = Vec::new();
        let mut rest = tokens.as_slice();
        while !rest.is_empty() {
            let (req, tail) =
                parse_requirement(rest).map_err(|e| format!("unable to parse requirement: {e}"))?;
            reqs.push(req);
            rest = match tail {
                [Token::Op(","), more @ ..] if !more.is_empty() => more,
                [] => tail,
                [t, ..] => {
                    return Err(format!(
                        "unable to parse requirement: found {}, expected: ','",
                        show(t)
                    ))
                }
            };
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object["metadata"]["labels"].as_object();
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::GreaterThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::LessThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

fn show(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("'{w}'"),
        Token::Op(o) => format!("'{o}'"),
    }
}

type Parsed<'a> = Result<(Requirement, &'a [Token]), String>;

fn parse_requirement(tokens: &[Token]) -> Parsed<'_> {
    if let [Token::Op("!"), Token::Word(k), rest @ ..] = tokens {
        valid_key(k)?;
        return Ok((Requirement::NotExists(k.clone()), rest));
    }
    let [Token::Word(key), rest @ ..] = tokens else {
        return Err(match tokens.first() {
            Some(t) => format!(
                "found {}, expected: !, identifier, or 'end of string'",
                show(t)
            ),
            None => "found 'end of string', expected: identifier".into(),
        });
    };
    valid_key(key)?;
    let k = key.clone();
    match rest {
        [] | [Token::Op(","), ..] => Ok((Requirement::Exists(k), rest)),
        [Token::Op(op @ ("=" | "==" | "!=")), tail @ ..] => {
            let (value, tail) = match tail {
                [Token::Word(v), t @ ..] => (v.clone(), t),
                _ => (String::new(), tail),
            };
            if !valid_label_value(&value) {
                return Err(format!("invalid label value: {value:?}"));
            }
            let req = if *op == "!=" {
                Requirement::NotEquals(k, value)
            } else {
                Requirement::Equals(k, value)
            };
            Ok((req, tail))
        }
        [Token::Op(op @ (">" | "<")), Token::Word(v), tail @ ..] => {
            let n = v.parse::<i64>().map_err(|_| {
                format!("for 'Gt', 'Lt' operators, the value must be an integer: {v:?}")
            })?;
            let req = if *op == ">" {
                Requirement::GreaterThan(k, n)
            } else {
                Requirement::LessThan(k, n)
            };
            Ok((req, tail))
        }
        [Token::Word(w), tail @ ..] if w == "in" || w == "notin" => {
            let (values, tail) = parse_set(tail)?;
            let req = if w == "in" {
                Requirement::In(k, values)
            } else {
                Requirement::NotIn(k, values)
            };
            Ok((req, tail))
        }
        [t, ..] => Err(format!(
            "found {}, expected: in, notin, =, ==, !=, gt, lt",
            show(t)
        )),
    }
}

fn parse_set(tokens: &[Token]) -> Result<(Vec<String>, &[Token]), String> {
    let [Token::Op("("), rest @ ..] = tokens else {
        return Err("found no '(', expected: '('".into());
    };
    let mut rest = rest;
    let mut values = Vec::new();
    loop {
        match rest {
            [Token::Word(v), tail @ ..] => {
                if !valid_label_value(v) {
                    return Err(format!("invalid label value: {v:?}"));
                }
                values.push(v.clone());
                rest = tail;
            }
            [Token::Op(")"), tail @ ..] => return Ok((values, tail)),
            [Token::Op(","), tail @ ..] => rest = tail,
            [t, ..] => {
                return Err(format!(
                    "found {}, expected: ',', ')' or identifier",
                    show(t)
                ))
            }
            [] => return Err("found 'end of string', expected: ')'".into()),
        }
    }
}

/// A field selector over the fields nodes support (`metadata.name`, `spec.unschedulable`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `key=value`, `key==value`, `key!=value` terms; unknown fields are refused as the
    /// Node field label conversion refuses them.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in s.split(',').filter(|t| !t.is_empty()) {
            let (key, equal, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            let key = key.trim();
            if key != "metadata.name" && key != "spec.unschedulable" {
                return Err(format!("field label not supported: {key}"));
            }
            terms.push((key.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(key, equal, value)| {
            let actual = match key.as_str() {
                "metadata.name" => object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                _ => object["spec"]["unschedulable"]
                    .as_bool()
                    .unwrap_or(false)
                    .to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// A continue token as etcd3 storage encodes it: base64url (no padding) of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<next key>"}`.
pub fn encode_continue(rv: u64, last_name: &str) -> String {
    let body = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{last_name}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
}

/// Decodes a continue token into (resourceVersion, start key); the error is a 400 `Status`.
pub fn decode_continue(token: &str) -> Result<(u64, String), Value> {
    let invalid = |why: &str| status::bad_request(&format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid("not a JSON continue key"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(invalid("server does not recognize this encoded key"));
    }
    let rv = v["rv"].as_u64().filter(|rv| *rv > 0);
    let start = v["start"].as_str();
    match (rv, start) {
        (Some(rv), Some(start)) => Ok((rv, start.to_string())),
        _ => Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_match() {
        let node = json!({"metadata": {"labels": {"node-role.kubernetes.io/master": "", "zone": "a", "n": "5"}}});
        let ok = |s: &str| LabelSelector::parse(s).unwrap().matches(&node);
        assert!(ok("node-role.kubernetes.io/master"));
        assert!(ok("node-role.kubernetes.io/master="));
        assert!(!ok("!node-role.kubernetes.io/master"));
        assert!(ok("zone=a,!node-role.kubernetes.io/worker"));
        assert!(ok("zone in (a,b), n>4"));
        assert!(!ok("zone notin (a)"));
        assert!(ok("zone!=b"));
        for bad in ["a b", "=x", "zone in a", "-bad", "x=y=z", "zone,"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(1234, "master-1");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (1234, "master-1\u{0}".to_string())
        );
        assert_eq!(status::code_of(&decode_continue("!!").unwrap_err()), 400);
    }
}
