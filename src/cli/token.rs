//! `tollgate token ...`: issue, verify and revoke tokens, and report their use.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use tollgate::tokens::{self, AccessSubject, SecretMeta, Signer};
use tollgate::{Config, Env};
use tollgate_server::table::{Align, TextTable};

use super::args::{ConfigArg, IssueAccessArgs, IssueArgs, RevokeArgs, UsageArgs, VerifyArgs};
use super::{fail, load_offline, runtime};

pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    tollgate::config::raw::parse_duration(text)
        .map_err(|e| format!("{e} (examples: 30s, 15m, 12h, 365d)"))
}

pub fn signer(config: &ConfigArg, env: &Env) -> Result<(Config, Signer), ExitCode> {
    let config = load_offline(config, env)?;
    let signer = Signer::from_config(&config).map_err(fail)?;
    Ok((config, signer))
}

pub fn issue(args: &IssueArgs, env: &Env) -> ExitCode {
    let (config, signer) = match signer(&args.config, env) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let services = if args.all {
        if config.tokens.services.is_empty() {
            return fail(tokens::TokenError::NoServices);
        }
        &config.tokens.services
    } else {
        &args.services
    };
    let secret = SecretMeta {
        name: args.secret_name.clone(),
        namespace: args.namespace.clone(),
    };
    let rendered =
        tokens::issue_service_tokens(&signer, services, &args.role, args.ttl, tokens::now())
            .and_then(|issued| tokens::render(&issued, args.format, &secret));
    match rendered {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn issue_access(args: &IssueAccessArgs, env: &Env) -> ExitCode {
    let (_, signer) = match signer(&args.config, env) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let subject = AccessSubject {
        user_id: args.user_id.clone(),
        email: args.email.clone(),
        role: args.role.clone(),
        tenant_id: args.tenant_id.clone(),
    };
    match tokens::issue_access_token(&signer, &subject, args.ttl, tokens::now()) {
        Ok(issued) => {
            println!("{}", issued.token);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn verify(args: &VerifyArgs, env: &Env) -> ExitCode {
    let config = match load_offline(&args.config, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let token = if args.token == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            return fail(format!("cannot read the token from stdin: {e}"));
        }
        text
    } else {
        args.token.clone()
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let inspection = runtime.block_on(tokens::inspect(&config, token.trim()));
    print!("{}", inspection.details());
    let summary = inspection.summary(tokens::now());
    if inspection.is_valid() {
        println!("{summary}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{summary}");
        ExitCode::FAILURE
    }
}

pub fn revoke(args: &RevokeArgs, env: &Env) -> ExitCode {
    use tollgate::revocation::{self, Target};
    let config = match load_offline(&args.config, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let target = match (&args.service, args.target.as_deref()) {
        (Some(service), _) => Target::Service(service.clone()),
        (None, Some("-")) => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                return fail(format!("cannot read the token from stdin: {e}"));
            }
            Target::token_or_jti(&text)
        }
        (None, Some(text)) => Target::token_or_jti(text),
        (None, None) => return fail("name a jti, a token or --service"),
    };
    let now = tokens::now();
    let revocation = match revocation::plan(&config, target, args.reason.clone(), now) {
        Ok(revocation) => revocation,
        Err(e) => return fail(e),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(revocation::add(&config.state, revocation.clone(), now)) {
        Ok(all) => {
            println!(
                "revoked {} (kept until {}); {} revocation(s) in {}",
                revocation.target(),
                humantime::format_rfc3339_seconds(unix_time(revocation.expires_at)),
                all.len(),
                config.state.describe()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn revoked(arg: &ConfigArg, env: &Env) -> ExitCode {
    let config = match load_offline(arg, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = tokens::now();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let list = match runtime.block_on(tollgate::revocation::list(&config.state)) {
        Ok(list) => list,
        Err(e) => return fail(e),
    };
    let mut table = TextTable::new(&[
        ("revoked", Align::Left),
        ("at", Align::Left),
        ("kept until", Align::Left),
        ("reason", Align::Left),
    ]);
    for r in list.revocations.iter().filter(|r| r.expires_at > now) {
        table.row(vec![
            r.target(),
            rfc3339(r.revoked_at),
            rfc3339(r.expires_at),
            r.reason.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    // Named, not hidden: an entry no replica can read enforces nothing.
    for entry in &list.unreadable {
        table.row(vec![
            format!("unreadable {}", entry.field),
            "-".to_owned(),
            "-".to_owned(),
            entry.reason.clone(),
        ]);
    }
    print!("{}", table.render());
    if !list.unreadable.is_empty() {
        eprintln!(
            "warning: {} stored revocation entr{} unreadable and enforced by no replica",
            list.unreadable.len(),
            if list.unreadable.len() == 1 {
                "y is"
            } else {
                "ies are"
            }
        );
    }
    ExitCode::SUCCESS
}

pub fn usage(args: &UsageArgs, env: &Env) -> ExitCode {
    let config = match load_offline(&args.config, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = tokens::now();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let read = runtime.block_on(async {
        let seen = tollgate::usage::read(&config.state, now).await?;
        let revocations = tollgate::revocation::list(&config.state).await?.revocations;
        Ok::<_, tollgate::revocation::store::StoreError>((seen, revocations))
    });
    let (seen, revocations) = match read {
        Ok(read) => read,
        Err(e) => return fail(e),
    };
    let rows = tollgate::usage::report(&config.tokens.services, &seen, &revocations, now);
    if args.format == "json" {
        for row in &rows {
            println!("{}", serde_json::to_string(row).unwrap_or_default());
        }
        return ExitCode::SUCCESS;
    }
    print_usage(&rows);
    ExitCode::SUCCESS
}

/// The usage report as a table, one row per service.
fn print_usage(rows: &[tollgate::usage::ServiceUsage]) {
    let time = |t: Option<u64>| t.map_or_else(|| "never".to_owned(), rfc3339);
    let mut table = TextTable::new(&[
        ("service", Align::Left),
        ("tokens in use", Align::Right),
        ("last seen", Align::Left),
        ("expiring ≤30 days", Align::Right),
        ("next expiry", Align::Left),
        ("revoked", Align::Left),
    ]);
    for row in rows {
        let mut revoked = Vec::new();
        if let Some(at) = row.service_revoked_at {
            revoked.push(format!("service at {}", rfc3339(at)));
        }
        if row.revoked_tokens > 0 {
            revoked.push(format!("{} token(s) seen", row.revoked_tokens));
        }
        let name = if row.registered {
            row.service.clone()
        } else {
            format!("{} (unlisted)", row.service)
        };
        table.row(vec![
            name,
            row.tokens_in_use.to_string(),
            time(row.last_seen),
            row.expiring_soon.to_string(),
            time(row.next_expiry),
            if revoked.is_empty() {
                "-".to_owned()
            } else {
                revoked.join(", ")
            },
        ]);
    }
    print!("{}", table.render());
}

/// Seconds since the epoch in RFC 3339, to the second.
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(unix_time(secs)).to_string()
}

/// Seconds since the epoch as a time to print (the store's times are bounded by the issuers'
/// lifetimes, so the fallback is never reached in practice).
pub fn unix_time(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(std::time::UNIX_EPOCH)
}
