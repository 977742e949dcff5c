//! keepalived.conf -> `[[check]]` and `[[instance]]` tables.
//!
//! The grammar is keepalived's: one statement per line, `{ ... }` blocks, `#` and `!` comments,
//! double-quoted words. Only what OpenShift renders (and its near variants) is translated; every
//! other keyword is listed with its line.

use std::collections::HashMap;

use super::syntax::{parse, Stmt};
use super::toml_out::{self, comment};
use super::{Note, Severity};
use crate::health::openshift_master_checks;

/// The translated part of a keepalived.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedImport {
    /// From the instance names `<cluster>_API` / `<cluster>_INGRESS`, with the line.
    pub cluster_name: Option<(String, usize)>,
    /// `[[check]]` and `[[instance]]` tables.
    pub body: String,
    pub notes: Vec<Note>,
}

struct Translator<'a> {
    notes: Vec<Note>,
    cluster_override: Option<&'a str>,
}

impl Translator<'_> {
    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.notes.push(Note {
            severity: Severity::Warning,
            line,
            message: message.into(),
        });
    }

    fn refuse(&mut self, line: usize, message: impl Into<String>) {
        self.notes.push(Note {
            severity: Severity::Refused,
            line,
            message: message.into(),
        });
    }
}

/// Translates a keepalived.conf. `cluster_name` replaces the name read from the instance names
/// (it decides whether a VRID is the derived one).
pub fn translate_keepalived(text: &str, cluster_name: Option<&str>) -> KeepalivedImport {
    let mut t = Translator {
        notes: Vec::new(),
        cluster_override: cluster_name,
    };
    let parsed = parse(text, &['#', '!']);
    for line in &parsed.stray_closes {
        t.warn(*line, "'}' without a matching '{'; ignored");
    }
    if let Some(line) = parsed.unclosed {
        t.refuse(
            line,
            "this '{' is never closed; the file is truncated or malformed",
        );
    }
    let stmts = parsed.stmts;
    let top = read_top_level(&mut t, &stmts);

    let cluster_name = cluster_from_instances(&top.instances);
    let cluster_for_vrid = t
        .cluster_override
        .map(str::to_owned)
        .or_else(|| cluster_name.as_ref().map(|(n, _)| n.clone()));

    let mut body = String::new();
    let mut script_names: Vec<String> = Vec::new();
    for s in &top.scripts {
        if let Some(check) = translate_script(&mut t, s) {
            body.push('\n');
            body.push_str(&check);
            script_names.extend(s.arg(1).map(str::to_owned));
        }
    }
    let groups: Vec<SyncGroup> = top
        .groups
        .iter()
        .filter_map(|g| translate_group(&mut t, g, &script_names))
        .collect();
    let cx = InstanceContext {
        cluster: cluster_for_vrid.as_deref(),
        globals: &top.globals,
        scripts: &script_names,
    };
    instance_tables(&mut t, &top.instances, &groups, &cx, &mut body);
    for g in &groups {
        body.push('\n');
        body.push_str(&sync_group_table(
            &mut t,
            g,
            &top.instances,
            cluster_for_vrid.as_deref(),
        ));
    }
    if top.instances.is_empty() {
        t.refuse(0, "no vrrp_instance: nothing to translate");
    }
    KeepalivedImport {
        cluster_name,
        body,
        notes: t.notes,
    }
}

/// The top-level statements of a keepalived.conf by kind, and what global_defs set.
struct TopLevel<'s> {
    globals: GlobalDefs,
    scripts: Vec<&'s Stmt>,
    instances: Vec<&'s Stmt>,
    groups: Vec<&'s Stmt>,
}

/// What global_defs sets for every instance.
#[derive(Default)]
struct GlobalDefs {
    /// `vrrp_version`, with its line.
    version: Option<(u8, usize)>,
    /// Announcement defaults: (vipd key, TOML value, line, keepalived keyword).
    garp: Vec<(&'static str, String, usize, &'static str)>,
}

/// What the translation of every instance reads besides its own block.
struct InstanceContext<'a> {
    /// The cluster name that decides whether a VRID is the derived one.
    cluster: Option<&'a str>,
    globals: &'a GlobalDefs,
    /// The names of the translated `vrrp_script`s (what `track_script` may name).
    scripts: &'a [String],
}

/// Sorts the top-level statements, reading `global_defs` and refusing what vipd has no
/// equivalent for.
fn read_top_level<'s>(t: &mut Translator<'_>, stmts: &'s [Stmt]) -> TopLevel<'s> {
    let mut top = TopLevel {
        globals: GlobalDefs::default(),
        scripts: Vec::new(),
        instances: Vec::new(),
        groups: Vec::new(),
    };
    for s in stmts {
        match s.keyword() {
            "global_defs" => read_global_defs(t, s, &mut top.globals),
            "vrrp_script" => top.scripts.push(s),
            "vrrp_instance" => top.instances.push(s),
            "include" => t.refuse(
                s.line,
                format!(
                    "{:?}: included files are not read; import the combined configuration",
                    s.text()
                ),
            ),
            "virtual_server" | "virtual_server_group" => t.refuse(
                s.line,
                format!("{}: LVS load balancing is not part of vipd", s.keyword()),
            ),
            "vrrp_sync_group" => top.groups.push(s),
            other => t.warn(
                s.line,
                format!("{other}: not translated (unknown to vipd import)"),
            ),
        }
    }
    top
}

/// One `global_defs` block (a file may have several; later values add to earlier ones).
fn read_global_defs(t: &mut Translator<'_>, s: &Stmt, globals: &mut GlobalDefs) {
    for g in s.children() {
        match g.keyword() {
            "vrrp_version" => match g.arg(1).and_then(|v| v.parse().ok()) {
                Some(v @ (2 | 3)) => globals.version = Some((v, g.line)),
                _ => t.refuse(
                    g.line,
                    format!("{:?}: accepted vrrp_version 2 or 3", g.text()),
                ),
            },
            k @ ("vrrp_garp_master_refresh" | "vrrp_garp_master_delay") => {
                let (key, k) = if k == "vrrp_garp_master_refresh" {
                    ("announce_refresh", "vrrp_garp_master_refresh")
                } else {
                    ("announce_repeat_after", "vrrp_garp_master_delay")
                };
                match g.arg(1).and_then(seconds_or_off) {
                    Some(v) => globals.garp.push((key, toml_out::string(&v), g.line, k)),
                    None => t.warn(
                        g.line,
                        format!("{:?}: not a number of seconds; not translated", g.text()),
                    ),
                }
            }
            "vrrp_garp_master_repeat" => match g.arg(1).and_then(|n| n.parse::<u32>().ok()) {
                Some(n) => globals.garp.push((
                    "announce_count",
                    n.to_string(),
                    g.line,
                    "vrrp_garp_master_repeat",
                )),
                None => t.warn(
                    g.line,
                    format!("{:?}: not a count; not translated", g.text()),
                ),
            },
            // Script security and the script user only matter to keepalived, which
            // runs check scripts as another user; vipd's probes run in-process.
            "enable_script_security" | "script_user" | "max_auto_priority" | "router_id" => {}
            other => t.warn(
                g.line,
                format!("global_defs {other}: not translated (no vipd equivalent)"),
            ),
        }
    }
}

/// The `[[instance]]` tables, appended to `body`; a sync group's track_script goes to every
/// member that tracks nothing itself.
fn instance_tables(
    t: &mut Translator<'_>,
    instances: &[&Stmt],
    groups: &[SyncGroup],
    cx: &InstanceContext<'_>,
    body: &mut String,
) {
    let mut names_seen: HashMap<String, usize> = HashMap::new();
    for s in instances {
        let Some((name, mut text)) = translate_instance(t, s, cx) else {
            continue;
        };
        let kname = s.arg(1).unwrap_or_default();
        if let Some(g) = groups
            .iter()
            .find(|g| g.members.iter().any(|(m, _)| m == kname))
        {
            // OpenShift moves the checks from the instances to the group (dual stack on
            // OpenStack): every member tracks them.
            if !g.track.is_empty() && !text.contains("\ntrack = ") {
                text.push_str(&format!(
                    "track = [{}]{}\n",
                    g.track.join(", "),
                    comment(&format!(
                        "line {}: vrrp_sync_group {} track_script",
                        g.track_line, g.name
                    ))
                ));
            }
        }
        if let Some(first) = names_seen.get(&name) {
            t.refuse(
                s.line,
                format!("vrrp_instance maps to the name {name:?} like the one at line {first}; rename one of them"),
            );
        }
        names_seen.insert(name, s.line);
        body.push('\n');
        body.push_str(&text);
    }
}

/// A `vrrp_sync_group`: its name, members (keepalived names, with lines) and tracked scripts.
struct SyncGroup {
    name: String,
    line: usize,
    members: Vec<(String, usize)>,
    track: Vec<String>,
    track_line: usize,
}

/// `vrrp_sync_group NAME { group { I1 I2 } track_script { ... } }`.
fn translate_group(t: &mut Translator<'_>, s: &Stmt, scripts: &[String]) -> Option<SyncGroup> {
    let Some(name) = s.arg(1) else {
        t.refuse(s.line, "vrrp_sync_group without a name");
        return None;
    };
    let mut g = SyncGroup {
        name: name.to_owned(),
        line: s.line,
        members: Vec::new(),
        track: Vec::new(),
        track_line: s.line,
    };
    for c in s.children() {
        match c.keyword() {
            "group" => {
                for m in c.children() {
                    let words = std::iter::once(m.keyword()).chain((1..).map_while(|i| m.arg(i)));
                    g.members.extend(words.map(|w| (w.to_owned(), m.line)));
                }
            }
            "track_script" => {
                g.track_line = c.line;
                g.track = translate_track(t, c, scripts);
            }
            k if k.starts_with("notify") || k == "smtp_alert" => t.warn(
                c.line,
                format!(
                    "vrrp_sync_group {name}: {k}: not translated; vipd logs every state change"
                ),
            ),
            other => t.refuse(
                c.line,
                format!(
                    "vrrp_sync_group {name}: {other}: only group and track_script are translated"
                ),
            ),
        }
    }
    Some(g)
}

/// `[[sync_group]]` for `g`, its members named as the instances are.
fn sync_group_table(
    t: &mut Translator<'_>,
    g: &SyncGroup,
    instances: &[&Stmt],
    cluster: Option<&str>,
) -> String {
    let mut names = Vec::new();
    for (m, line) in &g.members {
        if instances.iter().any(|s| s.arg(1) == Some(m.as_str())) {
            names.push(toml_out::string(&instance_name(m, cluster)));
        } else {
            t.refuse(
                *line,
                format!(
                    "vrrp_sync_group {}: {m} is no vrrp_instance of this file",
                    g.name
                ),
            );
        }
    }
    if names.len() < 2 {
        t.warn(
            g.line,
            format!(
                "vrrp_sync_group {}: fewer than two instances; vipd needs two or more in a group",
                g.name
            ),
        );
    }
    format!(
        "[[sync_group]]\nname = {}{}\ninstances = [{}]\n",
        toml_out::string(&g.name),
        comment(&format!("line {}: vrrp_sync_group {}", g.line, g.name)),
        names.join(", ")
    )
}

/// The entries of a `track_script` block as `track` items.
fn translate_track(t: &mut Translator<'_>, c: &Stmt, scripts: &[String]) -> Vec<String> {
    let mut track = Vec::new();
    for ts in c.children() {
        let Some(check) = ts.arg(0) else { continue };
        if !scripts.iter().any(|s| s == check) {
            t.refuse(
                ts.line,
                format!("track_script {check}: no vrrp_script of that name was translated"),
            );
            continue;
        }
        match (ts.arg(1), ts.arg(2)) {
            (None, _) => track.push(format!("{{ check = {} }}", toml_out::string(check))),
            (Some("weight"), Some(w)) if w.parse::<i32>().is_ok() && ts.arg(3).is_none() => track
                .push(format!(
                    "{{ check = {}, weight = {w} }}",
                    toml_out::string(check)
                )),
            _ => t.refuse(
                ts.line,
                format!(
                    "track_script {:?}: only 'name' or 'name weight N' is translated",
                    ts.text()
                ),
            ),
        }
    }
    track
}

/// `<cluster>_API` / `<cluster>_INGRESS` (OpenShift's instance names) -> the cluster name.
fn cluster_from_instances(instances: &[&Stmt]) -> Option<(String, usize)> {
    instances.iter().find_map(|s| {
        let name = s.arg(1)?;
        let upper = name.to_ascii_uppercase();
        ["_API", "_INGRESS"].iter().find_map(|suffix| {
            let at = upper.find(suffix)?;
            let rest = &upper[at + suffix.len()..];
            // `_API`, `_API_1` (a second family), never `_APIX`.
            if !(rest.is_empty() || rest.starts_with('_')) || at == 0 {
                return None;
            }
            Some((name[..at].to_ascii_lowercase(), s.line))
        })
    })
}

/// The vipd instance name of a keepalived instance: `ostest_API` -> `api`,
/// `ostest_INGRESS_1` -> `ingress-1`.
fn instance_name(name: &str, cluster: Option<&str>) -> String {
    let lower = name.to_ascii_lowercase();
    let short = match cluster {
        Some(c) => lower
            .strip_prefix(&format!("{c}_"))
            .unwrap_or(&lower)
            .to_owned(),
        None => lower,
    };
    short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// keepalived durations are seconds, possibly fractional; vipd wants a unit.
/// [`seconds`], except that 0 is kept as `"0s"`: for the GARP delay and refresh, keepalived's 0
/// turns the second burst / the refresh off, and so does vipd's `"0s"`.
fn seconds_or_off(text: &str) -> Option<String> {
    match text.parse::<f64>() {
        Ok(0.0) => Some("0s".to_owned()),
        _ => seconds(text),
    }
}

fn seconds(text: &str) -> Option<String> {
    let value: f64 = text.parse().ok()?;
    if value.is_nan() || value <= 0.0 || !value.is_finite() {
        return None;
    }
    let ms = (value * 1000.0).round() as u64;
    Some(if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    })
}

/// Shell words of a script, or `None` when it needs a shell (pipes, redirections, `$`, ...).
fn plain_words(script: &str) -> Option<Vec<String>> {
    if script.chars().any(|c| {
        matches!(
            c,
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '"' | '\'' | '\\'
        )
    }) {
        return None;
    }
    Some(script.split_whitespace().map(str::to_owned).collect())
}

/// `line N`, the source reference in the comments of the output.
fn at(line: usize) -> String {
    format!("line {line}")
}

/// The keys of a `vrrp_script` block other than its probe, as read.
struct ScriptKeys {
    /// The `script` line's command, with its line.
    script: Option<(String, usize)>,
    /// The interval and where it came from.
    interval: (String, String),
    /// The timeout and where it came from.
    timeout: Option<(String, String)>,
    /// weight / rise / fall, as TOML lines.
    rest: String,
}

fn translate_script(t: &mut Translator<'_>, s: &Stmt) -> Option<String> {
    let Some(name) = s.arg(1) else {
        t.refuse(s.line, "vrrp_script without a name");
        return None;
    };
    let mut out = format!(
        "[[check]]\nname = {}{}\n",
        toml_out::string(name),
        comment(&format!("{}: vrrp_script {name}", at(s.line)))
    );
    let ScriptKeys {
        script,
        interval,
        mut timeout,
        rest,
    } = read_script_keys(t, s, name);
    let Some((script, script_line)) = script else {
        t.refuse(s.line, format!("vrrp_script {name} has no script line"));
        return None;
    };
    let words = strip_timeout(&script, &at(script_line), &mut timeout);
    let (probe_text, probe_from) = script_probe(t, name, &script, script_line, words);
    out.push_str(&format!("# {}\n", toml_out::comment_text(&probe_from)));
    out.push_str(&probe_text);
    out.push_str(&toml_out::line(
        "interval",
        &toml_out::string(&interval.0),
        &interval.1,
    ));
    if let Some((d, from)) = timeout {
        out.push_str(&toml_out::line("timeout", &toml_out::string(&d), &from));
    }
    out.push_str(&rest);
    Some(out)
}

/// The statements of a `vrrp_script` block named `name`.
fn read_script_keys(t: &mut Translator<'_>, s: &Stmt, name: &str) -> ScriptKeys {
    let mut keys = ScriptKeys {
        script: None,
        interval: (
            "1s".to_owned(),
            "keepalived's default interval 1s".to_owned(),
        ),
        timeout: None,
        rest: String::new(),
    };
    for c in s.children() {
        let value = c.arg(1);
        match (c.keyword(), value) {
            ("script", Some(v)) => keys.script = Some((v.to_owned(), c.line)),
            ("interval", Some(v)) => match seconds(v) {
                Some(d) => keys.interval = (d, format!("{}: interval {v}", at(c.line))),
                None => t.refuse(c.line, format!("interval {v:?} is not a number of seconds")),
            },
            ("timeout", Some(v)) => match seconds(v) {
                Some(d) => keys.timeout = Some((d, format!("{}: timeout {v}", at(c.line)))),
                None => t.refuse(c.line, format!("timeout {v:?} is not a number of seconds")),
            },
            ("weight", Some(v)) => match v.parse::<i32>() {
                Ok(w) if c.arg(2).is_none() => {
                    keys.rest.push_str(&toml_out::line(
                        "weight",
                        &w.to_string(),
                        &format!("{}: weight {v}", at(c.line)),
                    ));
                }
                _ => t.refuse(
                    c.line,
                    format!(
                        "{:?}: only a plain integer weight is translated (no 'reverse')",
                        c.text()
                    ),
                ),
            },
            ("rise" | "fall", Some(v)) => match v.parse::<u32>() {
                Ok(n) => keys.rest.push_str(&toml_out::line(
                    c.keyword(),
                    &n.to_string(),
                    &format!("{}: {} {v}", at(c.line), c.keyword()),
                )),
                Err(_) => t.refuse(c.line, format!("{} {v:?} is not a count", c.keyword())),
            },
            // keepalived runs scripts as this user; vipd runs its probes itself.
            ("user", _) => t.warn(
                c.line,
                format!(
                    "vrrp_script {name}: user {:?}: vipd runs exec checks as its own user (root)",
                    value.unwrap_or("")
                ),
            ),
            (other, _) => t.warn(
                c.line,
                format!("vrrp_script {name}: {other}: not translated"),
            ),
        }
    }
    keys
}

/// The shell words of `script` (`None` when it needs a shell). `timeout N cmd`: keepalived's
/// scripts bound themselves; vipd's own timeout does that, so the wrapper goes into `timeout`
/// (`from` names the script's line).
fn strip_timeout(
    script: &str,
    from: &str,
    timeout: &mut Option<(String, String)>,
) -> Option<Vec<String>> {
    let mut words = plain_words(script);
    if let Some(w) = &words {
        let is_timeout = w
            .first()
            .is_some_and(|p| p == "timeout" || p.ends_with("/timeout"));
        if is_timeout && w.len() > 2 {
            if let Some(d) = seconds(&w[1]) {
                *timeout = Some((d, format!("{from}: {} {}", w[0], w[1])));
                words = Some(w[2..].to_vec());
            }
        }
    }
    words
}

/// The probe keys of the check for `script` (its shell words `words`, if plain) and the
/// comment saying where they came from: a curl becomes an http check, OpenShift's own scripts
/// vipd's preset, anything else an exec check.
fn script_probe(
    t: &mut Translator<'_>,
    name: &str,
    script: &str,
    script_line: usize,
    words: Option<Vec<String>>,
) -> (String, String) {
    let from = at(script_line);
    words
        .as_deref()
        .and_then(|w| curl_probe(t, w, script_line, name))
        .map(|(probe, note)| (probe, format!("{from}: {note}")))
        .or_else(|| {
            // OpenShift's own check scripts live in the keepalived container
            // (/etc/keepalived/*.sh), which is removed with keepalived: use vipd's native
            // equivalent of the same name.
            let preset = openshift_master_checks().into_iter().find(|c| c.name == name)?;
            let probe = preset_probe(&preset);
            t.warn(script_line, format!("vrrp_script {name}: the script {script:?} is replaced by vipd's built-in {name} check (same intent, no script; see docs/migration.md)"));
            Some((probe, format!("{from}: OpenShift's {name} script, as vipd's native preset")))
        })
        .unwrap_or_else(|| {
            let argv = match &words {
                Some(w) if w.first().is_some_and(|p| p.starts_with('/')) => w.clone(),
                _ => vec!["/bin/sh".into(), "-c".into(), script.to_owned()],
            };
            t.warn(script_line, format!("vrrp_script {name}: runs {script:?} as an exec check on the host; keepalived ran it inside its container, so check the program exists on the host"));
            (
                format!("exec = {}\n", toml_out::strings(&argv)),
                format!("{from}: script {script:?}"),
            )
        })
}

/// The probe keys of a preset check as TOML lines.
fn preset_probe(c: &crate::health::CheckConfig) -> String {
    let mut out = String::new();
    let single = crate::health::ProbeConfig {
        http: c.http.clone(),
        tcp: c.tcp.clone(),
        file: c.file.clone(),
        exec: c.exec.clone(),
        insecure: c.insecure,
    };
    if single != crate::health::ProbeConfig::default() {
        // `{ http = "..." }` -> `http = "..."`.
        let inline = toml_out::probe(&single);
        let inner = inline.trim_start_matches("{ ").trim_end_matches(" }");
        for part in split_top_level(inner) {
            out.push_str(&part);
            out.push('\n');
        }
    }
    for (key, list) in [("all_of", &c.all_of), ("any_of", &c.any_of)] {
        if let Some(list) = list {
            let items: Vec<String> = list.iter().map(toml_out::probe).collect();
            out.push_str(&format!("{key} = [{}]\n", items.join(", ")));
        }
    }
    out
}

/// Splits `a = "x", b = ["y", "z"]` at the commas that separate keys.
fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '[' if !in_string => depth += 1,
            ']' if !in_string => depth -= 1,
            ',' if !in_string && depth == 0 => {
                parts.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}

/// `curl [options] URL` -> an http probe, or `None` for any other command.
fn curl_probe(
    t: &mut Translator<'_>,
    words: &[String],
    line: usize,
    name: &str,
) -> Option<(String, String)> {
    let program = words.first()?;
    if program != "curl" && !program.ends_with("/curl") {
        return None;
    }
    let mut url: Option<String> = None;
    let mut fail = false;
    let mut insecure = false;
    let mut args = words[1..].iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fail" => fail = true,
            "--insecure" => insecure = true,
            "-o" | "--output" | "-m" | "--max-time" | "--connect-timeout" | "-H" | "--header"
            | "-w" | "--write-out" | "--retry" => {
                args.next();
            }
            s if s.starts_with("--") => {}
            s if s.starts_with('-') => {
                fail |= s.contains('f');
                insecure |= s.contains('k');
            }
            s if s.starts_with("http://") || s.starts_with("https://") => url = Some(s.to_owned()),
            _ => return None,
        }
    }
    let url = url?;
    // `0` is inet_aton shorthand for 0.0.0.0, which Linux connects to locally; OpenShift's
    // older templates probed https://0:6443. vipd's probe wants a real host.
    let url = url.replacen("://0:", "://127.0.0.1:", 1);
    if !fail {
        t.warn(line, format!("vrrp_script {name}: curl without -f/--fail counted any HTTP answer (even 500) as success; vipd's http check needs a 2xx status"));
    }
    // curl -k against a remote https host needs vipd's explicit `insecure` (loopback never
    // verifies); the check's own validation tells which case this is.
    let needs_insecure = crate::health::CheckConfig {
        name: name.to_owned(),
        http: Some(url.clone()),
        ..Default::default()
    }
    .validate()
    .is_err_and(|e| e.contains("would not verify"));
    let mut text = format!("http = {}\n", toml_out::string(&url));
    if insecure && needs_insecure {
        text.push_str("insecure = true\n");
    }
    Some((text, format!("curl {url}, as a native http check")))
}

/// The keys of one `vrrp_instance` as read from its block, before they are written out.
#[derive(Default)]
struct InstanceKeys {
    vips: Vec<(String, usize)>,
    vrid: Option<(u8, usize)>,
    version: Option<(u8, usize)>,
    password: Option<(String, usize)>,
    /// The keys written in the block's order (see [`last_of_each_key`]), as TOML lines.
    lines: String,
    track: Vec<String>,
    track_line: usize,
    unicast_peer_line: Option<usize>,
    check_unicast_src: bool,
    interface: Option<String>,
}

fn translate_instance(
    t: &mut Translator<'_>,
    s: &Stmt,
    cx: &InstanceContext<'_>,
) -> Option<(String, String)> {
    let Some(kname) = s.arg(1) else {
        t.refuse(s.line, "vrrp_instance without a name");
        return None;
    };
    let name = instance_name(kname, cx.cluster);
    let mut out = format!(
        "[[instance]]\nname = {}{}\n",
        toml_out::string(&name),
        comment(&format!("{}: vrrp_instance {kname}", at(s.line)))
    );
    let mut keys = InstanceKeys::default();
    for c in s.children() {
        keys.read(t, c, cx.scripts);
    }

    if let (Some(line), false) = (keys.unicast_peer_line, keys.check_unicast_src) {
        t.warn(
            line,
            "no check_unicast_src: keepalived heard adverts from any sender; vipd drops those from \
             senders outside unicast_peers (forged adverts cannot move the VIP). If a node that is \
             not listed must be heard, such as the bootstrap during installation, add \
             accept_from = [\"<its address>\"] (or check_source = false)",
        );
    }
    if keys.vips.is_empty() {
        t.refuse(
            s.line,
            format!("vrrp_instance {kname} has no virtual_ipaddress"),
        );
        return None;
    }
    let ipv6 = keys.vips.iter().any(|(v, _)| v.contains(':'));
    let vip_from = format!("{}: virtual_ipaddress", at(keys.vips[0].1));
    out.push_str(&toml_out::line(
        "vips",
        &toml_out::strings(
            &keys
                .vips
                .iter()
                .map(|(v, _)| v.as_str())
                .collect::<Vec<_>>(),
        ),
        &vip_from,
    ));
    match keys.vrid {
        Some((id, line)) => out.push_str(&vrid_line(id, line, &name, cx.cluster)),
        None => t.refuse(
            s.line,
            format!("vrrp_instance {kname} has no virtual_router_id"),
        ),
    }
    let v = write_version(t, s, &mut out, keys.version, cx.globals.version, ipv6);
    if let Some((p, line)) = keys.password {
        out.push_str(&password_line(t, &p, line, v));
    }
    out.push_str(&last_of_each_key(t, &keys.lines));
    for (key, value, line, keyword) in &cx.globals.garp {
        // An instance's own garp_master_* wins over the global default.
        if !out.contains(&format!("{key} = ")) {
            out.push_str(&toml_out::line(
                key,
                value,
                &format!("{}: global_defs {keyword}", at(*line)),
            ));
        }
    }
    if !keys.track.is_empty() {
        out.push_str(&format!(
            "track = [{}]{}\n",
            keys.track.join(", "),
            comment(&format!("{}: track_script", at(keys.track_line)))
        ));
    }
    Some((name, out))
}

/// `vrid = N`, or only a comment when `id` is the VRID vipd derives for the instance `name`.
fn vrid_line(id: u8, line: usize, name: &str, cluster: Option<&str>) -> String {
    let derived = cluster.map(|c| vipd_vrrp::vrid::derive_vrid(&format!("{c}-{name}")));
    if derived == Some(id) {
        format!(
            "# {}\n",
            toml_out::comment_text(&format!(
                "{}: virtual_router_id {id} = the VRID vipd derives from \"{}-{name}\"",
                at(line),
                cluster.unwrap_or_default()
            ))
        )
    } else {
        toml_out::line(
            "vrid",
            &id.to_string(),
            &format!("{}: virtual_router_id {id}", at(line)),
        )
    }
}

/// `password = ...` for VRRPv2; nothing (and a warning) for VRRPv3, which has no
/// authentication.
fn password_line(t: &mut Translator<'_>, password: &str, line: usize, version: u8) -> String {
    if version == 2 {
        toml_out::line(
            "password",
            &toml_out::string(password),
            &format!(
                "{}: auth_pass (only the first 8 bytes are sent, as keepalived does)",
                at(line)
            ),
        )
    } else {
        t.warn(line, "auth_pass with VRRPv3: keepalived ignores it (RFC 9568 has no authentication); not translated");
        String::new()
    }
}

/// Writes `version = N` for the instance `s` (its own, global_defs', or keepalived's default
/// for the VIPs' family) and returns it.
fn write_version(
    t: &mut Translator<'_>,
    s: &Stmt,
    out: &mut String,
    version: Option<(u8, usize)>,
    version_default: Option<(u8, usize)>,
    ipv6: bool,
) -> u8 {
    let (v, vfrom) = match (version, version_default) {
        (Some((v, line)), _) => (v, format!("{}: version {v}", at(line))),
        (None, Some((v, line))) => (v, format!("{}: global_defs vrrp_version {v}", at(line))),
        (None, None) if ipv6 => (3, "IPv6 VIPs: keepalived uses VRRPv3".to_owned()),
        (None, None) => (2, "keepalived's default (no vrrp_version)".to_owned()),
    };
    let v = if ipv6 && v == 2 {
        t.warn(
            s.line,
            "VRRPv2 cannot carry IPv6 (keepalived switches to v3 itself); written as version 3",
        );
        3
    } else {
        v
    };
    out.push_str(&toml_out::line("version", &v.to_string(), &vfrom));
    v
}

impl InstanceKeys {
    /// One statement of the instance's block; what vipd does not translate is noted.
    fn read(&mut self, t: &mut Translator<'_>, c: &Stmt, scripts: &[String]) {
        let from = format!("{}: {}", at(c.line), c.text());
        let translated = self.read_router(t, c, &from)
            || self.read_unicast(t, c, &from)
            || self.read_announce(t, c, &from)
            || self.read_addresses(t, c, scripts);
        if !translated {
            untranslated_instance_keyword(t, c);
        }
    }

    /// The router's own keys: interface, VRID, priority, timers, version, preemption,
    /// authentication. `false`: not one of them.
    fn read_router(&mut self, t: &mut Translator<'_>, c: &Stmt, from: &str) -> bool {
        match (c.keyword(), c.arg(1)) {
            ("state", Some(state)) => {
                if state == "MASTER" {
                    t.warn(c.line, "state MASTER: vipd starts every instance as Backup and lets the priorities decide (RFC 9568 section 6.4.1)");
                }
            }
            ("interface", Some(i)) => {
                self.interface = Some(i.to_owned());
                self.lines
                    .push_str(&toml_out::line("interface", &toml_out::string(i), from));
            }
            ("virtual_router_id", Some(n)) => match n.parse::<u8>() {
                Ok(id) if id >= 1 => self.vrid = Some((id, c.line)),
                _ => t.refuse(c.line, format!("virtual_router_id {n:?}: accepted 1..=255")),
            },
            ("priority", Some(p)) => match p.parse::<u8>() {
                Ok(n) if n >= 1 => {
                    self.lines
                        .push_str(&toml_out::line("priority", &n.to_string(), from))
                }
                _ => t.refuse(c.line, format!("priority {p:?}: accepted 1..=255")),
            },
            ("advert_int", Some(a)) => match seconds(a) {
                Some(d) => self.lines.push_str(&toml_out::line(
                    "advert_interval",
                    &toml_out::string(&d),
                    from,
                )),
                None => t.refuse(
                    c.line,
                    format!("advert_int {a:?} is not a number of seconds"),
                ),
            },
            // keepalived's per-instance keyword is `version`; `vrrp_version` is its global_defs
            // one, accepted here too.
            (k @ ("version" | "vrrp_version"), Some(n)) => match n.parse::<u8>() {
                Ok(x @ (2 | 3)) => self.version = Some((x, c.line)),
                _ => t.refuse(c.line, format!("{k} {n:?}: accepted 2 or 3")),
            },
            ("nopreempt", None) => self
                .lines
                .push_str(&toml_out::line("preempt", "false", from)),
            ("preempt", None) => {}
            ("preempt_delay", _) => t.warn(
                c.line,
                "preempt_delay: not supported; vipd preempts at once (as OpenShift does)",
            ),
            ("authentication", _) => self.read_authentication(t, c),
            _ => return false,
        }
        true
    }

    /// `authentication { auth_type PASS auth_pass ... }`.
    fn read_authentication(&mut self, t: &mut Translator<'_>, c: &Stmt) {
        let mut kind = None;
        for a in c.children() {
            match (a.keyword(), a.arg(1)) {
                ("auth_type", Some(k)) => kind = Some((k.to_owned(), a.line)),
                ("auth_pass", Some(p)) => self.password = Some((p.to_owned(), a.line)),
                (other, _) => t.warn(a.line, format!("authentication {other}: not translated")),
            }
        }
        match kind {
            Some((k, _)) if k == "PASS" => {}
            Some((k, line)) => {
                t.refuse(line, format!("auth_type {k}: vipd speaks only PASS (VRRPv2) or no authentication; a peer using {k} would reject vipd's adverts"));
                self.password = None;
            }
            None => {
                if self.password.is_some() {
                    t.warn(c.line, "auth_pass without auth_type: taken as PASS");
                }
            }
        }
    }

    /// unicast_src_ip, check_unicast_src, unicast_peer. `false`: not one of them.
    fn read_unicast(&mut self, t: &mut Translator<'_>, c: &Stmt, from: &str) -> bool {
        match (c.keyword(), c.arg(1)) {
            ("unicast_src_ip", Some(a)) => self.lines.push_str(&toml_out::line(
                "unicast_source",
                &toml_out::string(a),
                from,
            )),
            ("check_unicast_src", None) => {
                self.check_unicast_src = true;
                self.lines
                    .push_str(&toml_out::line("check_source", "true", from));
            }
            ("unicast_peer", _) => {
                self.unicast_peer_line = Some(c.line);
                let peers: Vec<&str> = c.children().iter().filter_map(|p| p.arg(0)).collect();
                let first = c.children().first().map_or(c.line, |p| p.line);
                let last = c.children().last().map_or(c.line, |p| p.line);
                for p in c.children().iter().filter(|p| p.words.len() > 1) {
                    t.warn(
                        p.line,
                        format!(
                            "unicast_peer {:?}: only the address is translated",
                            p.text()
                        ),
                    );
                }
                self.lines.push_str(&toml_out::line(
                    "unicast_peers",
                    &toml_out::strings(&peers),
                    &format!("lines {first}-{last}: unicast_peer"),
                ));
            }
            _ => return false,
        }
        true
    }

    /// garp_master_delay / _repeat / _refresh. `false`: not one of them.
    fn read_announce(&mut self, t: &mut Translator<'_>, c: &Stmt, from: &str) -> bool {
        match (c.keyword(), c.arg(1)) {
            ("garp_master_delay", Some(d)) => match seconds_or_off(d) {
                Some(x) => self.lines.push_str(&toml_out::line(
                    "announce_repeat_after",
                    &toml_out::string(&x),
                    from,
                )),
                None => t.warn(
                    c.line,
                    format!("garp_master_delay {d:?}: not a number of seconds; not translated"),
                ),
            },
            ("garp_master_repeat", Some(n)) => match n.parse::<u32>() {
                Ok(x) => {
                    self.lines
                        .push_str(&toml_out::line("announce_count", &x.to_string(), from))
                }
                Err(_) => t.warn(
                    c.line,
                    format!("garp_master_repeat {n:?}: not a count; not translated"),
                ),
            },
            ("garp_master_refresh", Some(d)) => match seconds_or_off(d) {
                Some(x) => self.lines.push_str(&toml_out::line(
                    "announce_refresh",
                    &toml_out::string(&x),
                    from,
                )),
                None => t.warn(c.line, format!("garp_master_refresh {d:?}: not translated")),
            },
            _ => return false,
        }
        true
    }

    /// virtual_ipaddress and track_script. `false`: neither.
    fn read_addresses(&mut self, t: &mut Translator<'_>, c: &Stmt, scripts: &[String]) -> bool {
        match c.keyword() {
            "virtual_ipaddress" => {
                for a in c.children() {
                    if let Some(vip) = translate_vip(t, a, self.interface.as_deref()) {
                        self.vips.push((vip, a.line));
                    }
                }
            }
            "track_script" => {
                self.track_line = c.line;
                self.track = translate_track(t, c, scripts);
            }
            _ => return false,
        }
        true
    }
}

/// An instance keyword vipd does not translate: refused where keepalived would do something
/// vipd cannot, otherwise a warning.
fn untranslated_instance_keyword(t: &mut Translator<'_>, c: &Stmt) {
    match c.keyword() {
        k @ ("virtual_ipaddress_excluded" | "virtual_routes" | "virtual_rules") => t.refuse(
            c.line,
            format!("{k}: vipd manages only the VIPs themselves; these addresses / routes would be lost"),
        ),
        k @ ("track_interface" | "track_file" | "track_process" | "track_bfd") => t.refuse(
            c.line,
            format!("{k}: only track_script is translated (as [[check]] + track); express it as a check"),
        ),
        k @ ("use_vmac" | "vmac_xmit_base") => t.refuse(
            c.line,
            format!("{k}: vipd answers with the interface's own MAC, not a virtual MAC"),
        ),
        k if k.starts_with("notify") || k == "smtp_alert" => t.warn(
            c.line,
            format!("{k}: vipd runs no notify scripts; watch `vipd status`, the log or /metrics instead"),
        ),
        k => t.warn(c.line, format!("{k}: not translated")),
    }
}

/// `192.0.2.5/32 label vip` -> `192.0.2.5`, noting what vipd does differently.
/// A keyword repeated in one block (keepalived keeps the last) must not become a repeated
/// TOML key, which makes the whole output unparsable: keep the last line of each key and warn
/// about the earlier ones. Found by fuzz/fuzz_targets/import_keepalived.rs.
fn last_of_each_key(t: &mut Translator<'_>, lines: &str) -> String {
    let key = |l: &str| l.split_once(" = ").map(|(k, _)| k.to_owned());
    let all: Vec<&str> = lines.lines().collect();
    let mut out = String::new();
    for (i, l) in all.iter().enumerate() {
        let k = key(l);
        if k.is_some() && all[i + 1..].iter().any(|later| key(later) == k) {
            let line = l
                .split_once("# line ")
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            t.warn(
                line,
                format!(
                    "{} is set again later in this vrrp_instance; the last one is used, as keepalived does",
                    k.unwrap_or_default()
                ),
            );
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn translate_vip(t: &mut Translator<'_>, a: &Stmt, interface: Option<&str>) -> Option<String> {
    let spec = a.arg(0)?;
    let (addr, prefix) = match spec.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (spec, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        t.refuse(
            a.line,
            format!("virtual_ipaddress {spec:?} is not an address"),
        );
        return None;
    };
    let host = if ip.is_ipv4() { "32" } else { "128" };
    if let Some(p) = prefix {
        if p != host {
            t.warn(a.line, format!("virtual_ipaddress {spec}: vipd adds VIPs as /{host} (as OpenShift does), not /{p}"));
        }
    }
    let mut opts = a.words[1..].iter();
    while let Some(o) = opts.next() {
        let value = opts.next().map(String::as_str);
        match (o.as_str(), value) {
            ("label", Some("vip")) => {}
            ("dev", Some(d)) if Some(d) == interface => {}
            ("dev", Some(d)) => t.refuse(a.line, format!("virtual_ipaddress {spec} dev {d}: a VIP on another interface than the instance's; split it into its own instance")),
            ("preferred_lft", Some("0")) | ("scope", Some("global")) => {}
            (o, v) => t.warn(a.line, format!("virtual_ipaddress {spec}: option {o} {} not translated", v.unwrap_or(""))),
        }
    }
    Some(ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_lose_the_cluster_prefix() {
        assert_eq!(instance_name("ostest_API", Some("ostest")), "api");
        assert_eq!(
            instance_name("ostest_INGRESS_1", Some("ostest")),
            "ingress-1"
        );
        assert_eq!(instance_name("VI_1", None), "vi-1");
    }

    #[test]
    fn seconds_become_whole_units() {
        assert_eq!(seconds("1").as_deref(), Some("1s"));
        assert_eq!(seconds("1.9").as_deref(), Some("1900ms"));
        assert_eq!(seconds("0"), None);
        assert_eq!(seconds("x"), None);
        assert_eq!(seconds_or_off("0").as_deref(), Some("0s"));
        assert_eq!(seconds_or_off("0.0").as_deref(), Some("0s"));
        assert_eq!(seconds_or_off("5").as_deref(), Some("5s"));
        assert_eq!(seconds_or_off("-1"), None);
    }
}
