//! `vipd import keepalived <keepalived.conf> [--corefile <Corefile>]` and
//! `vipd import corefile <Corefile>`: print a vipd configuration translated from OpenShift's
//! files on stdout, and every difference on stderr.
//!
//! Exit status: 0 when everything essential was translated (warnings may be printed), 1 when
//! something essential was not or the result does not validate. The TOML is printed in both
//! cases so it can be finished by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Config;
use crate::import::{self, Import, Severity};

#[derive(Debug, clap::Subcommand)]
pub enum Source {
    /// Translate a keepalived.conf (vrrp_script -> [[check]], vrrp_instance -> [[instance]]).
    Keepalived {
        /// The keepalived.conf, e.g. /etc/keepalived/keepalived.conf inside the keepalived pod.
        file: PathBuf,
        /// Also translate the node's CoreDNS Corefile into [dns] and [http].
        #[arg(long, value_name = "COREFILE")]
        corefile: Option<PathBuf>,
        /// The cluster name, when the instance names do not tell it (`<cluster>_API`).
        #[arg(long)]
        cluster_name: Option<String>,
    },
    /// Translate a CoreDNS Corefile into [dns] and [http].
    Corefile {
        /// The Corefile, e.g. /etc/coredns/Corefile inside the CoreDNS pod.
        file: PathBuf,
        /// The cluster name, instead of the first label of the cluster zone.
        #[arg(long)]
        cluster_name: Option<String>,
    },
}

pub fn run(source: Source) -> ExitCode {
    match translate(&source) {
        Ok(import) => finish(&import),
        Err(e) => {
            eprintln!("vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the {what}", path.display()))
}

fn translate(source: &Source) -> anyhow::Result<Import> {
    Ok(match source {
        Source::Keepalived {
            file,
            corefile,
            cluster_name,
        } => {
            let k = import::translate_keepalived(
                &read(file, "keepalived configuration")?,
                cluster_name.as_deref(),
            );
            let name = file.display().to_string();
            let c = match corefile {
                Some(path) => Some((
                    path.display().to_string(),
                    import::translate_corefile(&read(path, "Corefile")?),
                )),
                None => None,
            };
            import::assemble(
                Some((&name, k)),
                c.as_ref().map(|(n, c)| (n.as_str(), c.clone())),
                cluster_name.as_deref(),
            )
        }
        Source::Corefile { file, cluster_name } => {
            let c = import::translate_corefile(&read(file, "Corefile")?);
            let name = file.display().to_string();
            import::assemble(None, Some((&name, c)), cluster_name.as_deref())
        }
    })
}

fn finish(import: &Import) -> ExitCode {
    print!("{}", import.toml);
    for (file, notes) in &import.notes {
        for n in notes {
            let what = match n.severity {
                Severity::Warning => "warning",
                Severity::Refused => "not translated",
            };
            if n.line == 0 {
                eprintln!("{file}: {what}: {}", n.message);
            } else {
                eprintln!("{file}:{}: {what}: {}", n.line, n.message);
            }
        }
    }
    let mut failed = import.refused();
    // The output must be a configuration vipd accepts; say so now rather than at start.
    match Config::parse(&import.toml, "(imported configuration)") {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("vipd check-config would warn: {w}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("vipd: the translated configuration does not validate; finish it by hand");
            failed = true;
        }
    }
    if failed {
        eprintln!("vipd: something essential was not translated (see above); exit status 1");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
