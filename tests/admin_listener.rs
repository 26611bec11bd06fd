//! The admin listener is held to the data listener's rules: a connection cap, a deadline per
//! connection, and a pause after failed accepts. Idle admin connections in a process with few
//! descriptors must leave the data port answering and the CPU idle.

mod support;

use std::time::Duration;

use tokio::net::TcpStream;

use support::recording::RecordingUpstream;
use support::*;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test]
async fn idle_admin_connections_cannot_starve_the_data_port() {
    let up = RecordingUpstream::start().await;
    let gw = GatewayProcess::spawn_with_nofile(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\nadmin_max_connections = 8\nadmin_connection_timeout = \"30s\"\n\n{}",
            public_route("/", &up.url(), "")
        ),
        &[],
        // Fewer descriptors than the admin connections opened below.
        96,
    );
    // 110 connections that never send a byte: the admin port takes 8, the kernel queues the
    // rest (std's backlog is 128), and the process keeps descriptors for its data port.
    let mut idle = Vec::new();
    for _ in 0..110 {
        idle.push(within(TcpStream::connect(gw.admin)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_ticks(gw.child.id());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_ticks(gw.child.id()) - before;
    assert!(
        spent < 30,
        "{spent} ticks of CPU in one idle second: the accept loop spins"
    );
    let reply = get(&gw.url("/data"), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let logs = gw.logs().join("\n");
    assert!(!logs.contains("Too many open files"), "{logs}");
    drop(idle);
}

#[tokio::test]
async fn admin_connections_end_at_their_deadline() {
    let gw = GatewayProcess::spawn(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\nadmin_max_connections = 2\nadmin_connection_timeout = \"1s\"\n\n[[routes]]\nprefix = \"/\"\nupstream = \"echo\"\npolicy = \"public\"\n",
        &[],
    );
    // Two silent connections take both slots; the gateway closes them at the deadline, and a
    // probe waiting behind them is answered.
    let mut a = within(TcpStream::connect(gw.admin)).await.unwrap();
    let _b = within(TcpStream::connect(gw.admin)).await.unwrap();
    let reply = get(&format!("http://{}/healthz", gw.admin), &[]).await;
    assert_eq!(reply.status, 200);
    let mut buf = [0u8; 16];
    use tokio::io::AsyncReadExt;
    let n = within(a.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "the silent connection was closed");
}
