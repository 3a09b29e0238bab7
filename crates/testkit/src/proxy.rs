//! A TCP forwarder a test can cut, to see how a service behaves when a dependency
//! becomes unreachable while it runs.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, target, cut_rx));
        Self { addr, cut }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listener and every forwarded connection.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = cut.changed() => return,
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { return };
                let mut cut = cut.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else { return };
                    let (mut inbound, mut outbound) = (inbound, outbound);
                    tokio::select! {
                        _ = cut.changed() => {},
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {},
                    }
                });
            }
        }
    }
}
