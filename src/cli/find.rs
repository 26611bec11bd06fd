//! Where the config is: the file named (`--config`, `$TOLLGATE_CONFIG`), else the first of the
//! documented places that exists, so an installed binary works outside the checkout; and
//! `tollgate init`, which writes a starter config there.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::args::DEFAULT_CONFIG;

/// The places looked at, in order, when no config is named: `./config/tollgate.toml`,
/// `/etc/tollgate/tollgate.toml`, then the user's (`$XDG_CONFIG_HOME`, else `~/.config`).
pub fn search_list() -> Vec<PathBuf> {
    let mut places = vec![
        PathBuf::from(DEFAULT_CONFIG),
        PathBuf::from("/etc/tollgate/tollgate.toml"),
    ];
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")));
    if let Some(dir) = user {
        places.push(dir.join("tollgate/tollgate.toml"));
    }
    places
}

/// The config file: `named`, else the first place of [`search_list`] that exists; when none
/// does, the error names every place looked.
pub fn config_path(named: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = named {
        return Ok(path.to_owned());
    }
    let places = search_list();
    if let Some(found) = places.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = places
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect();
    Err(format!(
        "no config file given (--config or TOLLGATE_CONFIG), and none at:\n{}\n\
         (`tollgate init` writes a starter config to the first of these)",
        looked.join("\n")
    ))
}

/// `tollgate init [PATH]`: writes a starter config (a generated HMAC secret, loopback
/// listeners, an echo route and an authenticated one) readable by the user alone; never
/// overwrites a file.
pub fn init(path: Option<&Path>) -> ExitCode {
    let path = path.map_or_else(|| PathBuf::from(DEFAULT_CONFIG), Path::to_owned);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(starter(&tollgate::keygen::new_secret_text()).as_bytes())
        });
    if let Err(e) = written {
        eprintln!(
            "error: {}: {e} (init never overwrites a config)",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    let flag = match path == Path::new(DEFAULT_CONFIG) {
        true => String::new(),
        false => format!(" --config {}", path.display()),
    };
    println!(
        "wrote {} (mode 0600: it holds the new signing secret)",
        path.display()
    );
    println!("\nnext:\n  tollgate check{flag}\n  tollgate serve{flag}");
    println!("  tollgate token issue my-service{flag}   # a service token for /api");
    ExitCode::SUCCESS
}

/// The starter config around `secret`.
fn starter(secret: &str) -> String {
    format!(
        r#"# tollgate starter config, written by `tollgate init`. Reference: the Configuration
# chapter of the docs; `tollgate check` validates this file and prints its routes.

[server]
listen = ["${{TOLLGATE_LISTEN:-127.0.0.1:8080}}"]
admin_listen = "${{TOLLGATE_ADMIN_LISTEN:-127.0.0.1:9901}}"

# Tokens signed with this secret (`tollgate token issue`) are accepted. Generated for this file:
# keep it secret, or move it to the environment: secret = "${{TOLLGATE_JWT_SECRET}}".
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{secret}"

# Anyone: the built-in echo shows what an upstream would receive.
[[routes]]
name = "echo"
prefix = "/echo"
upstream = "echo"
policy = "public"

# Any valid token; replace echo with your service, e.g. "http://127.0.0.1:3000".
[[routes]]
name = "api"
prefix = "/api"
upstream = "echo"
policy = "authenticated"
"#
    )
}
