//! A TCP proxy between appraisal and dispatch's feed that a test can freeze: bytes are
//! held, not refused or reset — what a dead link or a stuck middlebox looks like to both
//! ends, which TCP alone does not notice for minutes.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{oneshot, watch},
};

pub struct Proxy {
    pub addr: SocketAddr,
    frozen: watch::Sender<bool>,
    hold_new: watch::Sender<bool>,
}

impl Proxy {
    /// Listens now; forwards to the address sent on the returned sender (dispatch's, once
    /// it listens).
    pub async fn start() -> (Self, oneshot::Sender<SocketAddr>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (target_tx, target_rx) = oneshot::channel();
        let (frozen, _) = watch::channel(false);
        let (hold_new, _) = watch::channel(false);
        let (f, h) = (frozen.subscribe(), hold_new.subscribe());
        tokio::spawn(async move {
            let Ok(target) = target_rx.await else { return };
            while let Ok((client, _)) = listener.accept().await {
                let (f, mut h) = (f.clone(), h.clone());
                // Whether new connections are held is decided when each one arrives.
                let held = *h.borrow();
                tokio::spawn(async move {
                    if held && h.wait_for(|held| !held).await.is_err() {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(target).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pipe(cr, sw, f.clone()), pipe(sr, cw, f));
                });
            }
        });
        (Self { addr, frozen, hold_new }, target_tx)
    }

    /// Every connection, open or new, stops passing bytes (or passes them again).
    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    /// Connections opened from now on wait before reaching dispatch (or no longer wait);
    /// connections already open are unaffected.
    pub fn hold_new(&self, held: bool) {
        self.hold_new.send_replace(held);
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut frozen: watch::Receiver<bool>) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
