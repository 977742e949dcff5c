//! The resolv.conf state machine: take over the target at start, follow the upstream while
//! running, give the target back at stop. Synchronous and clock-free: the caller decides when
//! to poll (see [`super::ResolverWatch`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::file::{self, Entry, Written};
use super::render::{self, RenderInput, ResolvConf};
use super::ResolverError;

/// Everything the manager needs, resolved (own address known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The file the node's libc reads (`[resolver] target`).
    pub target: PathBuf,
    /// Where the real upstreams are (`[resolver] source`); equal to `target` in bootstrap mode.
    pub source: PathBuf,
    /// Bootstrap mode: where the original is saved for the DNS forwarder (`upstream_copy`).
    pub upstream_copy: PathBuf,
    /// vipd's own DNS address, written first.
    pub own: IpAddr,
    /// Never written as fallbacks (VIPs, this node's addresses).
    pub exclude: Vec<IpAddr>,
    /// `None` = cluster domain, then the upstream's search list.
    pub search: Option<Vec<String>>,
    pub cluster_domain: String,
}

impl Settings {
    /// Bootstrap mode: no separate upstream file exists, vipd saves the original itself.
    pub fn saves_original(&self) -> bool {
        self.source == self.target
    }
}

/// Where the upstream content comes from while vipd runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Upstream {
    /// A file another program keeps current (NetworkManager's copy, or the destination of the
    /// symbolic link vipd replaced).
    File(PathBuf),
    /// The target's original content, saved at start (dhclient / bootstrap).
    Original,
}

/// What happened at start, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub written: Written,
    /// The target held vipd's own output: the previous run ended without restoring it.
    pub recovered_after_crash: bool,
    /// The upstream file did not exist; the target lists only vipd until it appears.
    pub upstream_missing: bool,
}

/// Why the target was rewritten while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// The upstream content changed (DHCP renewal, NetworkManager reconnect).
    UpstreamChanged,
    /// Another program replaced vipd's target (NetworkManager, dhclient, an operator).
    TargetOverwritten,
}

/// How the target was given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The symbolic link vipd replaced is back.
    Symlink(PathBuf),
    /// The upstream content (or the saved original) was written.
    Content(Written),
}

pub struct ResolvConfManager {
    settings: Settings,
    upstream: Upstream,
    /// The symbolic link vipd replaced, to put back at stop.
    replaced_symlink: Option<PathBuf>,
    /// The target's content before vipd wrote it (never vipd's own output).
    original: Option<String>,
    last_upstream: Option<String>,
    last_written: Option<String>,
}

impl ResolvConfManager {
    /// Takes over the target: records what it was, saves the original in bootstrap mode and
    /// writes vipd's version.
    pub fn start(settings: Settings) -> Result<(Self, Started), ResolverError> {
        let target = settings.target.clone();
        let entry = file::entry(&target).map_err(|e| ResolverError::read(&target, e))?;
        let text = file::read_optional(&target).map_err(|e| ResolverError::read(&target, e))?;
        let own_output = text.as_deref().is_some_and(render::is_own_output);

        let replaced_symlink = match &entry {
            Entry::Symlink(content) => Some(content.clone()),
            _ => text.as_deref().and_then(render::recorded_symlink),
        };
        let original = if own_output {
            // A crash left vipd's output in place: its own text is never the original. The
            // original is inside it (bootstrap mode) or in the upstream copy.
            text.as_deref()
                .and_then(render::recorded_original)
                .or_else(|| {
                    if settings.saves_original() {
                        file::read_optional(&settings.upstream_copy).ok().flatten()
                    } else {
                        None
                    }
                })
        } else {
            text.clone()
        };
        let upstream = match (&replaced_symlink, settings.saves_original()) {
            (_, false) => Upstream::File(settings.source.clone()),
            // The link's destination is kept current by whoever owns it: follow that file.
            (Some(link), true) => Upstream::File(file::link_destination(&target, link)),
            (None, true) => Upstream::Original,
        };
        if settings.saves_original() && original.is_none() && upstream == Upstream::Original {
            return Err(ResolverError::NoOriginal {
                target: target.clone(),
                copy: settings.upstream_copy.clone(),
            });
        }

        let mut manager = ResolvConfManager {
            settings,
            upstream,
            replaced_symlink,
            original,
            last_upstream: None,
            last_written: None,
        };
        let upstream_text = manager.read_upstream()?;
        let upstream_missing = upstream_text.is_none();
        manager.last_upstream = upstream_text;
        let written = manager.write()?;
        Ok((
            manager,
            Started {
                written,
                recovered_after_crash: own_output,
                upstream_missing,
            },
        ))
    }

    /// Re-reads the upstream and the target; rewrites the target when either changed.
    pub fn poll(&mut self) -> Result<Option<Rewrite>, ResolverError> {
        let target = self.settings.target.clone();
        let mut reason = None;
        let entry = file::entry(&target).map_err(|e| ResolverError::read(&target, e))?;
        let text = file::read_optional(&target).map_err(|e| ResolverError::read(&target, e))?;
        let ours = matches!(entry, Entry::File) && text.is_some() && text == self.last_written;
        if !ours {
            reason = Some(Rewrite::TargetOverwritten);
            match &entry {
                Entry::Symlink(link) => {
                    self.replaced_symlink = Some(link.clone());
                    if self.settings.saves_original() {
                        self.upstream = Upstream::File(file::link_destination(&target, link));
                    }
                }
                _ => {
                    let foreign = text.as_deref().filter(|t| !render::is_own_output(t));
                    if let Some(t) = foreign {
                        // dhclient (bootstrap mode) writes the renewed upstreams right here.
                        self.original = Some(t.to_owned());
                        self.replaced_symlink = None;
                        if self.settings.saves_original() {
                            self.upstream = Upstream::Original;
                        }
                    }
                }
            }
        }
        match self.read_upstream() {
            Ok(Some(now)) if self.last_upstream.as_ref() != Some(&now) => {
                self.last_upstream = Some(now);
                reason = reason.or(Some(Rewrite::UpstreamChanged));
            }
            Ok(_) => {}
            // A vanished or unreadable upstream keeps the last content: the node keeps resolving.
            Err(e) if reason.is_none() => return Err(e),
            Err(_) => {}
        }
        if reason.is_some() {
            self.write()?;
        }
        Ok(reason)
    }

    /// Gives the target back: the replaced symbolic link, or the upstream content.
    pub fn restore(&mut self) -> Result<Restored, ResolverError> {
        let target = self.settings.target.clone();
        if let Some(link) = &self.replaced_symlink {
            file::replace_with_symlink(&target, link)
                .map_err(|e| ResolverError::write(&target, e))?;
            self.remove_copy();
            return Ok(Restored::Symlink(link.clone()));
        }
        let content = match &self.upstream {
            Upstream::File(path) => file::read_optional(path)
                .ok()
                .flatten()
                .or_else(|| self.last_upstream.clone())
                .or_else(|| self.original.clone()),
            Upstream::Original => self.original.clone(),
        };
        let Some(content) = content else {
            return Err(ResolverError::NothingToRestore {
                target,
                upstream: self.settings.source.clone(),
            });
        };
        let written =
            file::replace(&target, &content).map_err(|e| ResolverError::write(&target, e))?;
        self.last_written = None;
        self.remove_copy();
        Ok(Restored::Content(written))
    }

    /// The file the upstream content comes from, for messages.
    pub fn upstream_path(&self) -> &Path {
        match &self.upstream {
            Upstream::File(p) => p,
            Upstream::Original => &self.settings.upstream_copy,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read_upstream(&self) -> Result<Option<String>, ResolverError> {
        match &self.upstream {
            Upstream::File(path) => {
                file::read_optional(path).map_err(|e| ResolverError::read(path, e))
            }
            Upstream::Original => Ok(self.original.clone()),
        }
    }

    fn write(&mut self) -> Result<Written, ResolverError> {
        let upstream_text = self.last_upstream.clone().unwrap_or_default();
        if self.settings.saves_original() && self.last_upstream.is_some() {
            // The DNS forwarder reads its upstreams from this copy, never from the target.
            let copy = &self.settings.upstream_copy;
            file::write_private_copy(copy, &upstream_text)
                .map_err(|e| ResolverError::write(copy, e))?;
        }
        let keep_original = match self.upstream {
            Upstream::Original => self.original.as_deref(),
            Upstream::File(_) => None,
        };
        let text = render::render(
            &ResolvConf::parse(&upstream_text),
            &RenderInput {
                own: self.settings.own,
                exclude: &self.settings.exclude,
                search: self.settings.search.as_deref(),
                cluster_domain: &self.settings.cluster_domain,
                upstream_path: self.upstream_path(),
                replaced_symlink: self.replaced_symlink.as_deref(),
                keep_original,
            },
        );
        let target = &self.settings.target;
        let written = file::replace(target, &text).map_err(|e| ResolverError::write(target, e))?;
        self.last_written = Some(text);
        Ok(written)
    }

    fn remove_copy(&self) {
        if self.settings.saves_original() {
            let _ = std::fs::remove_file(&self.settings.upstream_copy);
        }
    }
}
