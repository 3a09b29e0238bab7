//! A TCP forwarder a test can cut or stall, to see how a service behaves when a dependency
//! becomes unreachable, or stops answering, while it runs.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the connections it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Connections open so far are held open and forward nothing any more (a server that
    /// stopped answering); new connections are forwarded.
    Stall,
    Cut,
}

pub struct TcpProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, mode_rx) = watch::channel(Mode::Forward);
        tokio::spawn(accept_loop(listener, target, mode_rx));
        Self { addr, mode }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listener and every forwarded connection.
    pub fn cut(&self) {
        let _ = self.mode.send(Mode::Cut);
    }

    /// Every connection open now stops forwarding but stays open, so whoever waits on a
    /// reply there waits for ever; connections made afterwards are forwarded as usual.
    pub fn stall_open_connections(&self) {
        let _ = self.mode.send(Mode::Stall);
        let _ = self.mode.send(Mode::Forward);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    loop {
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Cut {
                    return;
                }
            }
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { return };
                tokio::spawn(forward(inbound, target, mode.clone()));
            }
        }
    }
}

async fn forward(mut inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    mode.mark_unchanged();
    let stalled = tokio::select! {
        _ = mode.changed() => *mode.borrow_and_update() != Mode::Cut,
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
    };
    if stalled {
        // Hold both ends open, answering nothing, until the proxy is cut.
        while mode.changed().await.is_ok() {
            if *mode.borrow() == Mode::Cut {
                return;
            }
        }
    }
}
