//! `ricochetd`: the ricochet server as a native daemon, without Node.
//!
//! It runs the same core as the Node `Server` (`ricochet::server::Server`) and reads the config
//! and keys files of `bin/ricochet-server.js`, so either can serve the same deployment.
//!
//! - [`config`]: the config file and the `"server"` options, validated and mapped.
//! - [`keys`]: the keys file and the auth answers built from it.
//! - [`log`]: one stdout line per lifecycle event.
//!
//! This file holds the command line, the runtime and the event loop: server events (auth
//! requests answered from the keys, the rest logged) and signals (SIGHUP reloads the keys,
//! SIGTERM/SIGINT close the server and exit 0). Bad input exits 2 with a message on stderr.

mod config;
mod keys;
mod log;

use config::Config;
use keys::Keys;
use ricochet::server::{Event, EventSink, ListenError, Server};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

const HELP: &str = r#"Usage: ricochetd --config <file.json>

Runs a ricochet server as a native daemon, without Node. Same config and keys files as
ricochet-server (bin/ricochet-server.js).

Config file (JSON):
  {
    "listen": { "host": "127.0.0.1", "port": 23225 },   // port 0: a free port
    "keys": "keys.json",              // path, relative to the config file
    "cluster": { "nats": "nats://127.0.0.1:4222", "name": "edge-1" },   // optional
    "server": { ... }                 // any Server option: timeouts, maxConnections,
                                      // maxMessageSize, maxQueueSize, encryption, metrics, ...
  }
  Unknown or invalid options are errors (exit 2).

Keys file (JSON): publicKey -> { privateKey, channel, groups, authKey?, ip? }
  { "pub-api": { "privateKey": "…", "channel": "api", "groups": ["jobs"], "authKey": "…" } }

Signals:
  SIGHUP   reload the keys file; connected clients stay (a bad file keeps the old keys)
  SIGTERM  stop accepting, disconnect clients, exit 0 (also SIGINT)

Output: one line per event on stdout (listening, connect, ready, auth-fail, refused,
route-fail, disconnect, error, reload, stop, stopped).

Environment:
  RICOCHET_THREADS   tokio worker threads (default: one per core)
  DEBUG              ricochet:core (or ricochet:*) traces the core on stderr

Options:
  --config <file>   the config file (required)
  --help            this text
"#;

/// The exit code of bad arguments, config or keys, and of a failed start.
const EXIT_BAD_INPUT: u8 = 2;

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Help,
    Run(PathBuf),
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut config = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--config" => match it.next() {
                Some(file) => config = Some(PathBuf::from(file)),
                None => return Err("--config needs a file (see --help)".into()),
            },
            _ => match a.strip_prefix("--config=") {
                Some(file) => config = Some(PathBuf::from(file)),
                None => return Err(format!("unknown argument {a} (see --help)")),
            },
        }
    }
    config
        .map(Command::Run)
        .ok_or_else(|| "--config <file> is required (see --help)".into())
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ricochetd: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = match parse_args(&args) {
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(file)) => file,
        Err(e) => return fail(&e),
    };
    let config = match config::load(&file) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    for w in &config.warnings {
        eprintln!("ricochetd: warning: {w}");
    }
    let keys = match Keys::load(&config.keys) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    ricochet::trace::configure(std::env::var("DEBUG").ok().as_deref());
    let runtime = match ricochet::net::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(config, keys)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Binds like `lib/server.js`: the given host, or every interface (`::`, else `0.0.0.0`).
async fn bind(server: &Server, host: Option<&str>, port: u16) -> Result<SocketAddr, ListenError> {
    const BACKLOG: u32 = 511;
    match host {
        Some(h) => server.listen(h, port, BACKLOG).await,
        None => match server.listen("::", port, BACKLOG).await {
            Ok(a) => Ok(a),
            Err(_) => server.listen("0.0.0.0", port, BACKLOG).await,
        },
    }
}

fn listen_error(e: &ListenError) -> String {
    let code = match e {
        ListenError::InUse => "ricochet.server_inuse",
        ListenError::Closed => "ricochet.server_closed",
        ListenError::Io(io) => ricochet::net::io_code(io),
    };
    format!("cannot listen: {code} {e}")
}

/// Starts the server, then serves events and signals until SIGTERM or SIGINT.
async fn run(config: Config, mut keys: Keys) -> Result<(), String> {
    // Handlers go in first, so a signal sent right after the listening line is never lost.
    let sig = |kind: SignalKind| signal(kind).map_err(|e| format!("cannot handle signals: {e}"));
    let (mut hup, mut term, mut int) = (
        sig(SignalKind::hangup())?,
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
    );
    let (sink, mut events) = EventSink::channel();
    let server = Server::new(config.server.clone(), sink);
    // Routing failures are logged (route-fail), so the core must produce them.
    server.set_wants("messageError", true);
    if let Err(e) = start(&server, &config, &keys).await {
        server.close().await;
        return Err(e);
    }
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => handle(&server, &keys, &ev),
                None => break,
            },
            _ = hup.recv() => match Keys::load(&config.keys) {
                Ok(k) => {
                    keys = k;
                    let n = format!("{} keys from {}", keys.len(), config.keys.display());
                    log::line(&["reload", &n]);
                }
                Err(e) => log::line(&["reload-failed", &e, "(keeping the previous keys)"]),
            },
            _ = term.recv() => return stop(&server, &keys, &mut events, "SIGTERM").await,
            _ = int.recv() => return stop(&server, &keys, &mut events, "SIGINT").await,
        }
    }
    Ok(())
}

/// Listens, joins the cluster and serves metrics, in the Node server's order, then prints the
/// listening line (with the real port when the config asked for port 0).
async fn start(server: &Server, config: &Config, keys: &Keys) -> Result<(), String> {
    let addr = bind(server, config.host.as_deref(), config.port)
        .await
        .map_err(|e| listen_error(&e))?;
    if let Some((url, name)) = &config.cluster {
        server
            .join_cluster(url, name)
            .await
            .map_err(|e| format!("cannot join the cluster on {url}: {e}"))?;
    }
    let mut metrics = String::new();
    if let Some((host, port)) = &config.metrics {
        let m = server
            .listen_metrics(host, *port)
            .await
            .map_err(|e| format!("cannot serve metrics on {host}:{port}: {e}"))?;
        metrics = format!("metrics on {}:{}", m.ip(), m.port());
    }
    let listening = format!("{}:{}", addr.ip(), addr.port());
    let n = format!("{} keys", keys.len());
    log::line(&["listening", &listening, &n, &metrics]);
    Ok(())
}

/// Answers auth requests from the keys (unrouted requests: no recipient) and logs the rest.
fn handle(server: &Server, keys: &Keys, ev: &Event) {
    let rid = || {
        serde_json::from_str::<Value>(&ev.payload)
            .ok()
            .and_then(|p| Some((p.get("rid")?.as_u64()?, p)))
    };
    match ev.name {
        "_auth" => {
            if let Some((rid, p)) = rid() {
                let answer = keys.answer(p.get("data").unwrap_or(&Value::Null));
                server.resolve_auth(rid, answer);
            }
        }
        "_unrouted" => {
            if let Some((rid, _)) = rid() {
                server.resolve_unrouted(rid, Some("message_norecipient".into()));
            }
        }
        _ => log::event(ev),
    }
}

/// Stops accepting, disconnects every client, logs what that caused, and returns.
async fn stop(
    server: &Server,
    keys: &Keys,
    events: &mut UnboundedReceiver<Event>,
    signal: &str,
) -> Result<(), String> {
    let clients = serde_json::from_str::<Vec<Value>>(&server.clients_json()).map_or(0, |c| c.len());
    log::line(&["stop", signal, &format!("{clients} clients")]);
    server.close().await;
    while let Ok(ev) = events.try_recv() {
        handle(server, keys, &ev);
    }
    log::line(&["stopped"]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_line_takes_config_in_both_forms_and_help() {
        let run = |f: &str| Ok(Command::Run(PathBuf::from(f)));
        assert_eq!(parse_args(&args(&["--config", "a.json"])), run("a.json"));
        assert_eq!(parse_args(&args(&["--config=b.json"])), run("b.json"));
        assert_eq!(
            parse_args(&args(&["--config", "a.json", "-h"])),
            Ok(Command::Help)
        );
        assert!(parse_args(&args(&[])).is_err_and(|e| e.contains("--config <file> is required")));
        assert!(parse_args(&args(&["--config"])).is_err());
        assert!(parse_args(&args(&["--port", "1"]))
            .is_err_and(|e| e.contains("unknown argument --port")));
    }
}
